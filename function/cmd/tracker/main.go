// Command tracker runs the tracking function as a plain binary, the same
// way the func CLI's scaffold does: func-go's HTTP runtime serves it, with
// the same health paths, timeouts and SIGTERM handling.
package main

import (
	"fmt"
	"os"

	"knative.dev/func-go/http"

	"tracker"
)

func main() {
	if err := http.Start(tracker.New()); err != nil {
		fmt.Fprintln(os.Stderr, "tracker:", err)
		os.Exit(1)
	}
}
