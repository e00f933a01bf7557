package event

import "fmt"

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

// InvalidError rejects a request whose body or events are invalid;
// nothing of it may be stored.
type InvalidError struct {
	// Detail sums the problem up in one client-safe sentence.
	Detail string
	// Errors names every problem found, by index and field.
	Errors []FieldError
	// Events is how many events the rejected batch held; 0 when the
	// request was no batch or could not be read as one.
	Events int
}

func (e *InvalidError) Error() string { return e.Detail }

// TooManyError rejects a batch of more events than one request may carry.
type TooManyError struct {
	Events, Max int
}

func (e *TooManyError) Error() string {
	return fmt.Sprintf("the batch has %d events; at most %d are accepted in one request", e.Events, e.Max)
}

func invalid(detail string, errs []FieldError) *InvalidError {
	return &InvalidError{Detail: detail, Errors: errs}
}

// fieldErrors collects the FieldErrors of one request.
type fieldErrors []FieldError

func (fe *fieldErrors) add(index *int, field, reason, format string, args ...any) {
	*fe = append(*fe, FieldError{Index: index, Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// InvalidBatch rejects a batch of n items (what names them: "events",
// "CloudEvents") for the problems errs, which name their indexes.
func InvalidBatch(what string, n int, errs []FieldError) *InvalidError {
	e := invalid(fmt.Sprintf("%d of %d %s are invalid; nothing was stored", countIndexes(errs), n, what), errs)
	e.Events = n
	return e
}

// countIndexes is how many events of a batch have a problem.
func countIndexes(fe []FieldError) int {
	seen := map[int]bool{}
	for _, e := range fe {
		if e.Index != nil {
			seen[*e.Index] = true
		}
	}
	return len(seen)
}
