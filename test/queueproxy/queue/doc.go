// Package queue holds no code: its module exists for the tool directive in
// its go.mod, which pins Knative's queue-proxy (knative.dev/serving
// cmd/queue) at the Knative Serving release that test/go.mod requires.
// It is built with the dependency versions that release was built with: in
// test/'s module OpenTelemetry resolves newer, and the queue-proxy then
// stops at start ("error merging otel resources: conflicting Schema URL").
// The harness builds it with go tool -n queue, which keeps the binary in
// the Go build cache (test/internal/harness/queueproxy.go).
package queue
