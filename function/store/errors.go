package store

import (
	"errors"
	"fmt"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// ErrUnavailable marks a store failure that a retry may cure: no
// connection, a timeout, an overloaded or unavailable replica set. Every
// other error of Save is a fault that no retry cures (a bad query, refused
// credentials, a missing table).
var ErrUnavailable = errors.New("store unavailable")

// ConflictError reports the events of a Save that were not written
// because their id is stored already with other content (another user,
// target, description or source): one id is one event. Every other event
// of the Save was written.
type ConflictError struct {
	// Indexes are the positions of those events in Save's events, in
	// ascending order.
	Indexes []int
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%d events have an id that is stored with other content", len(e.Indexes))
}

// errClosed answers a statement that meets a closed store.
var errClosed = fmt.Errorf("%w: the store is closed", ErrUnavailable)

// classify marks errors that a retry may cure with ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var reqErr gocql.RequestError
	if errors.As(err, &reqErr) {
		switch reqErr.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeUnauthorized, gocql.ErrCodeConfig,
			gocql.ErrCodeCredentials, gocql.ErrCodeProtocol, gocql.ErrCodeAlreadyExists:
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
