package function

import (
	"context"
	"errors"
)

// Store writes validated events durably.
type Store interface {
	// Save stores every event and returns nil only when each one has been
	// acknowledged at the configured consistency. Saving the same event
	// again (same ID) leaves the stored rows as they were: one per table.
	// An event with a zero OccurredAt takes the time it was first stored
	// with, or its ReceivedAt when it is new.
	Save(ctx context.Context, events []Event) error
	// Ready reports whether the store can take writes now.
	Ready() bool
}

// ErrUnavailable marks a store failure that a retry may cure: no
// connection, a timeout, an overloaded or unavailable replica set.
var ErrUnavailable = errors.New("store unavailable")
