// Command probe runs the tracking function exactly as function/cmd/tracker
// does (func-go's http.Start of tracker.New), and for the fault tests only
// serves the Go runtime's goroutine count on a second loopback listener,
// PROBE_ADDRESS. The product has no such endpoint, and func-go catches
// SIGQUIT, so a goroutine dump cannot be had from it from outside; this
// wrapper lives in the test module and is never shipped.
//
//	GET /goroutines               runtime.NumGoroutine(), as text
//	GET /debug/pprof/goroutine    the goroutine profile (?debug=1 for text)
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"

	fhttp "knative.dev/func-go/http"

	"tracker"
)

func main() {
	addr := os.Getenv("PROBE_ADDRESS")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "probe: PROBE_ADDRESS is required (a loopback host:port)")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/goroutines", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, runtime.NumGoroutine())
	})
	mux.Handle("/debug/pprof/goroutine", pprof.Handler("goroutine"))
	go func() { _ = http.Serve(ln, mux) }()

	if err := fhttp.Start(tracker.New()); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}
