// Package tracker is the func project root: the func CLI's scaffold calls
// New. The implementation lives in tracker/function.
package tracker

import "tracker/function"

// New returns the tracking function instance for func-go.
func New() *function.Function {
	return function.New()
}
