package harness

import (
	"context"
	"fmt"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// CloudEventModes are the modes of CloudEventRequest.
var CloudEventModes = []string{"binary", "structured", "batch"}

// CloudEventRequest is POST url+"/track" with events encoded by the
// CloudEvents SDK in mode: "binary" or "structured" (one event), or
// "batch" (any number).
func CloudEventRequest(url, mode string, events ...cloudevents.Event) (*http.Request, error) {
	ctx := context.Background()
	switch mode {
	case "binary", "structured":
		if len(events) != 1 {
			return nil, fmt.Errorf("a %s CloudEvent request holds one event, got %d", mode, len(events))
		}
		if mode == "structured" {
			ctx = binding.WithForceStructured(ctx)
		}
		return cehttp.NewHTTPRequestFromEvent(ctx, url+"/track", events[0])
	case "batch":
		return cehttp.NewHTTPRequestFromEvents(ctx, url+"/track", events)
	}
	return nil, fmt.Errorf("unknown CloudEvents mode %q; want one of %v", mode, CloudEventModes)
}

// NewCloudEvent is an impression as a CloudEvent of type
// dev.tracker.impression: source and id make its key, at is its time (no
// time attribute when zero), and its data is the impression of username
// on target.
func NewCloudEvent(id, source, username, target, description string, at time.Time) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource(source)
	e.SetType("dev.tracker.impression")
	if !at.IsZero() {
		e.SetTime(at)
	}
	err := e.SetData(cloudevents.ApplicationJSON, map[string]string{"username": username, "target": target, "description": description})
	return e, err
}
