// Package jaeger holds no code: its module exists for the tool directive
// in its go.mod, which pins Jaeger v2 (github.com/jaegertracing/jaeger
// cmd/jaeger), the trace backend that tests send the function's spans to.
// Jaeger's dependencies (the OpenTelemetry Collector and every storage
// client) are many; in a module of their own they stay out of test/go.mod.
// The harness builds it with go tool -n jaeger, which keeps the binary in
// the Go build cache (test/internal/harness/jaeger.go).
package jaeger
