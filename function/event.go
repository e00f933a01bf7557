package function

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of an event's fields; they are part of the API contract.
const (
	maxUsernameRunes = 256
	maxTargetBytes   = 2048
	maxIDBytes       = 128
	maxSourceBytes   = 1024
	// maxFutureSkew is how far a client's clock may run ahead of ours.
	maxFutureSkew = 24 * time.Hour
)

// Event is one validated impression, ready to be stored.
type Event struct {
	// ID is the idempotency key: the client's id, a CloudEvent's source and
	// id joined by a space, or a UUIDv7 made here.
	ID string
	// Retryable is true when the ID came from the client, so that the same
	// event may arrive again and must land on the same rows.
	Retryable bool
	// Username, Target and Description are the impression itself.
	Username    string
	Target      string
	Description string
	// Source is the CloudEvent source; empty for the plain JSON form.
	Source string
	// OccurredAt is the client's time of the impression; zero when the
	// client gave none (the store then decides, see Store).
	OccurredAt time.Time
	// ReceivedAt is when this function read the request.
	ReceivedAt time.Time
}

// FieldError is one reason an event was rejected.
type FieldError struct {
	// Index is the event's position in a batch; nil for a single event.
	Index *int `json:"index,omitempty"`
	// Field names the offending JSON field or CloudEvents attribute.
	Field string `json:"field"`
	// Reason is a short snake_case code, stable for clients and logs.
	Reason string `json:"reason"`
	// Message explains the problem to a person.
	Message string `json:"message"`
}

// fieldErrors collects FieldErrors of one request.
type fieldErrors []FieldError

func (fe *fieldErrors) add(index *int, field, reason, format string, args ...any) {
	*fe = append(*fe, FieldError{Index: index, Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// validateImpression checks the three impression fields. It is shared by
// every input form.
func validateImpression(fe *fieldErrors, index *int, username, target, description string, present func(string) bool) {
	switch {
	case !present("username"):
		fe.add(index, "username", "missing_field", "is required")
	case username == "":
		fe.add(index, "username", "empty_username", "must not be empty")
	case utf8.RuneCountInString(username) > maxUsernameRunes:
		fe.add(index, "username", "username_too_long", "must be at most %d characters, got %d", maxUsernameRunes, utf8.RuneCountInString(username))
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		fe.add(index, "username", "control_character", "must not contain control characters")
	}

	switch {
	case !present("target"):
		fe.add(index, "target", "missing_field", "is required")
	case len(target) > maxTargetBytes:
		fe.add(index, "target", "target_too_long", "must be at most %d bytes, got %d", maxTargetBytes, len(target))
	default:
		if why := checkTarget(target); why != "" {
			fe.add(index, "target", "invalid_target", "%s, got %q", why, target)
		}
	}

	switch {
	case !present("description"):
		fe.add(index, "description", "missing_field", "is required")
	case description != "CLICK" && description != "VIEW":
		fe.add(index, "description", "invalid_description", "must be CLICK or VIEW, got %q", description)
	}
}

// checkTarget returns why target is not an absolute http or https URL, or "".
func checkTarget(target string) string {
	if strings.IndexFunc(target, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return "must be an absolute http or https URL without spaces or control characters"
	}
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	return ""
}

// checkID returns why a client-given id cannot be an idempotency key, or "".
// Ids never contain white space, so that a CloudEvent key ("source id")
// can never equal a plain one.
func checkID(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len(id) > maxIDBytes:
		return fmt.Sprintf("must be at most %d bytes, got %d", maxIDBytes, len(id))
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain white space or control characters"
	}
	return ""
}

// checkOccurredAt returns why a client time is unacceptable, or "".
func checkOccurredAt(t, now time.Time) string {
	if t.After(now.Add(maxFutureSkew)) {
		return fmt.Sprintf("must not be more than %s in the future, got %s", maxFutureSkew, t.Format(time.RFC3339))
	}
	if t.Year() < 1970 {
		return fmt.Sprintf("must not be before 1970, got %s", t.Format(time.RFC3339))
	}
	return ""
}
