// Package tracker is the func project root: the func CLI's scaffold calls
// New. The implementation lives in tracker/function.
package tracker

import (
	"tracker/function"
	"tracker/function/telemetry"
)

// New returns the tracking function instance for func-go. The scaffold's
// main calls it before func-go writes its first line, so it is where
// func-go's log lines (zerolog, debug by default) are taken over: held at
// info until Start has read LOG_LEVEL and LOG_FORMAT and routes them into
// the function's own stream. It reads no environment.
func New() *function.Function {
	telemetry.HoldRuntimeLogs()
	return function.New()
}
