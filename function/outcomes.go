package function

import (
	"errors"
	"net/http"

	"tracker/function/event"
	"tracker/function/telemetry"
)

// This file says what became of the events of a request that was not
// answered 201, for the metrics: problem.go says what the client is told.

// countRefused tells rec what became of the events of a request answered
// e: events of a 4xx are rejected, of a 5xx failed. n is how many events
// the request carried; 0 when they were not read, which counts as one.
// An invalid batch counts each bad event under its first problem's reason
// and its good events under in_invalid_batch, since none of them was
// stored. A 409 counts the events of an id conflict as rejected and the
// others as stored, which they are.
func countRefused(rec *telemetry.Request, e *apiError, err error, n int) {
	var (
		invalid *event.InvalidError
		tooMany *event.TooManyError
	)
	switch {
	case e.Status >= 500:
		rec.Failed(e.Reason, max(n, 1), e.Err)
	case e.Status == http.StatusConflict:
		// The events of an id conflict are rejected; the others of
		// their request were stored.
		rec.Stored(e.Stored)
		rec.Rejected(e.Reason, n-e.Stored)
	case errors.As(err, &invalid):
		for reason, count := range rejectedReasons(invalid) {
			rec.Rejected(reason, count)
		}
	case errors.As(err, &tooMany):
		rec.Rejected(e.Reason, tooMany.Events)
	default:
		rec.Rejected(e.Reason, max(n, 1))
	}
}

// rejectedReasons counts the events of an invalid request by reason.
func rejectedReasons(inv *event.InvalidError) map[string]int {
	first := map[int]string{} // an event's first problem, by its index
	whole := ""               // the first problem of the request as a whole
	for _, fe := range inv.Errors {
		switch {
		case fe.Index == nil:
			if whole == "" {
				whole = fe.Reason
			}
		case first[*fe.Index] == "":
			first[*fe.Index] = fe.Reason
		}
	}
	out := map[string]int{}
	for _, reason := range first {
		out[reason]++
	}
	if rest := max(inv.Events, 1) - len(first); rest > 0 {
		if whole == "" {
			whole = "in_invalid_batch"
		}
		out[whole] += rest
	}
	return out
}
