// Command trackerprof is the function's standalone main (see
// function/cmd/tracker) with profiling added, for the benchmark only: it
// records a CPU profile from start to SIGTERM into TRACKER_CPU_PROFILE and
// writes the allocation profile to TRACKER_ALLOC_PROFILE on exit. The
// product's binary has no profiling endpoint.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"knative.dev/func-go/http"

	"tracker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trackerprof:", err)
		os.Exit(1)
	}
}

func run() error {
	cpu, err := os.Create(os.Getenv("TRACKER_CPU_PROFILE"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	serveErr := http.Start(tracker.New())
	pprof.StopCPUProfile()

	allocs, err := os.Create(os.Getenv("TRACKER_ALLOC_PROFILE"))
	if err != nil {
		return err
	}
	defer allocs.Close()
	if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
		return err
	}
	return serveErr
}
