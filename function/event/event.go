// Package event is what the tracker accepts: the validated Event, and one
// decoder per input form (a plain JSON object or batch; a CloudEvent in
// binary, structured or batch mode) that ends in it. Decoders return an
// *InvalidError that names every bad field, or a *TooManyError; they know
// nothing of HTTP statuses or of storage.
package event

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
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
	// client gave none (the store then decides when it occurred).
	OccurredAt time.Time
	// ReceivedAt is when this function read the request.
	ReceivedAt time.Time
}

// fields is the decoded JSON of an event object, the plain form's or a
// CloudEvent's data: each field's value, nil when it was absent. One input
// form knows a subset of them (plainFields, ceDataFields).
type fields struct {
	ID, Timestamp                 *string
	Username, Target, Description *string
}

// slot is where the value of the field name goes; nil for a name no form
// knows.
func (f *fields) slot(name string) **string {
	switch name {
	case "id":
		return &f.ID
	case "timestamp":
		return &f.Timestamp
	case "username":
		return &f.Username
	case "target":
		return &f.Target
	case "description":
		return &f.Description
	}
	return nil
}

// validateImpression checks the three impression fields of f. It is
// shared by every input form.
func validateImpression(fe *fieldErrors, index *int, f *fields) {
	username, target, description := deref(f.Username), deref(f.Target), deref(f.Description)
	switch {
	case f.Username == nil:
		fe.add(index, "username", "missing_field", "is required")
	case username == "":
		fe.add(index, "username", "empty_username", "must not be empty")
	case utf8.RuneCountInString(username) > maxUsernameRunes:
		fe.add(index, "username", "username_too_long", "must be at most %d characters, got %d", maxUsernameRunes, utf8.RuneCountInString(username))
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		fe.add(index, "username", "control_character", "must not contain control characters")
	}

	switch {
	case f.Target == nil:
		fe.add(index, "target", "missing_field", "is required")
	case len(target) > maxTargetBytes:
		fe.add(index, "target", "target_too_long", "must be at most %d bytes, got %d", maxTargetBytes, len(target))
	default:
		if why := checkTarget(target); why != "" {
			fe.add(index, "target", "invalid_target", "%s, got %q", why, target)
		}
	}

	switch {
	case f.Description == nil:
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

// newID makes a server-side event id: a UUIDv7, ordered by time. Since Go
// 1.24 crypto/rand, its random source, never fails.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// v7Time is the time a UUIDv7 was made, from its first 48 bits (Unix
// milliseconds, RFC 9562 section 5.7), when id is a UUIDv7 in the
// standard form (36 characters, hex digits of either case); ok is false
// for any other id.
func v7Time(id string) (t time.Time, ok bool) {
	if len(id) != 36 {
		return time.Time{}, false
	}
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		return time.Time{}, false
	}
	ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
	return time.UnixMilli(ms).UTC(), true
}

// timeFromID gives ev, an event with a client id and no time, the time
// its id was made when the id is a UUIDv7 (v7Time): every delivery of
// the event then has the same time and writes the same rows, with no
// claim (a lightweight transaction) to settle its time. id is the id as
// the client sent it (a CloudEvent's without its source), field its name
// in errors. The id's time obeys the rules of a timestamp.
func timeFromID(fe *fieldErrors, index *int, field, id string, now time.Time, ev *Event) {
	t, ok := v7Time(id)
	if !ok {
		return
	}
	if why := checkOccurredAt(t, now); why != "" {
		fe.add(index, field, "invalid_id", "is a UUIDv7, whose time is the event's when it has no timestamp, and that time %s", why)
		return
	}
	ev.OccurredAt = t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Check reports every rule of the API that ev breaks, as of now: each
// decoder returns only events that break none, which the fuzz tests hold
// them to. A client id must be a valid id; a CloudEvent's key starts with
// its source; a server-made id is a UUIDv7.
func (ev *Event) Check(now time.Time) []FieldError {
	var fe fieldErrors
	validateImpression(&fe, nil, &fields{Username: &ev.Username, Target: &ev.Target, Description: &ev.Description})
	for field, s := range map[string]string{"id": ev.ID, "username": ev.Username, "target": ev.Target, "description": ev.Description, "source": ev.Source} {
		if !utf8.ValidString(s) {
			fe.add(nil, field, "invalid_utf8", "must be valid UTF-8")
		}
	}
	switch {
	case !ev.Retryable:
		if u, err := uuid.Parse(ev.ID); err != nil || u.Version() != 7 {
			fe.add(nil, "id", "invalid_id", "a server-made id must be a UUIDv7, got %q", ev.ID)
		}
	case ev.Source == "":
		if why := checkID(ev.ID); why != "" {
			fe.add(nil, "id", "invalid_id", "%s", why)
		}
	case !strings.HasPrefix(ev.ID, ev.Source+" "):
		fe.add(nil, "id", "invalid_id", "a CloudEvent key must start with its source %q, got %q", ev.Source, ev.ID)
	}
	if _, isV7 := v7Time(strings.TrimPrefix(ev.ID, ev.Source+" ")); ev.Retryable && isV7 && ev.OccurredAt.IsZero() {
		fe.add(nil, "id", "invalid_id", "is a UUIDv7 and the event has no time: it must have the id's")
	}
	if !ev.OccurredAt.IsZero() {
		if why := checkOccurredAt(ev.OccurredAt, now); why != "" {
			fe.add(nil, "timestamp", "invalid_timestamp", "%s", why)
		} else if ev.OccurredAt.Location() != time.UTC {
			fe.add(nil, "timestamp", "invalid_timestamp", "must be in UTC, got %s", ev.OccurredAt)
		}
	}
	return fe
}
