package function

import (
	"net/http"
	"net/url"
	"strings"
)

// corsPolicy lets web pages of the origins in TRACK_CORS_ORIGINS send
// events with fetch or XMLHttpRequest. navigator.sendBeacon and plain form
// posts need no permission, being "simple" requests, but a POST with
// Content-Type application/json or ce-* headers from another origin is
// preceded by a preflight (OPTIONS) that must be answered, and the page
// reads the answer only with Access-Control-Allow-Origin.
type corsPolicy struct {
	any     bool
	origins map[string]bool // in lower case, as browsers send them
}

func newCORSPolicy(list []string) corsPolicy {
	c := corsPolicy{origins: map[string]bool{}}
	for _, o := range list {
		if o == "*" {
			c.any = true
		}
		c.origins[strings.ToLower(o)] = true
	}
	return c
}

// allows reports whether a page of origin may send events.
func (c corsPolicy) allows(origin string) bool {
	return c.any || c.origins[strings.ToLower(origin)]
}

// headers sets the CORS headers of an answer to a request with an Origin
// header (origin, "" when absent). With a list of origins the answer
// depends on the Origin, which caches must know.
func (c corsPolicy) headers(h http.Header, origin string) {
	if !c.any {
		h.Add("Vary", "Origin")
	}
	if origin == "" || !c.allows(origin) {
		return
	}
	if c.any {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	// A page may read Retry-After to know when to send again.
	h.Set("Access-Control-Expose-Headers", "Retry-After")
}

// preflightMaxAge is how long, in seconds, a browser may keep a
// preflight's answer (Chromium keeps at most two hours).
const preflightMaxAge = "7200"

// preflight answers OPTIONS /track: to a browser's preflight, that it may
// POST with the headers it asked for; to anyone, which methods there are.
func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Allow", "POST, OPTIONS")
	if r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "POST")
		// Any request header may come: the function reads the ones it
		// knows (Content-Type, ce-*) and ignores the rest.
		if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
			h.Set("Access-Control-Allow-Headers", asked)
		}
		h.Set("Access-Control-Max-Age", preflightMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

// errOriginNotAllowed answers a preflight or POST from a page whose origin
// is not in TRACK_CORS_ORIGINS.
func errOriginNotAllowed(origin string) *apiError {
	return &apiError{Status: http.StatusForbidden, Detail: "pages of this origin may not send events here",
		Errors: []FieldError{{Field: "Origin", Reason: "origin_not_allowed", Message: "origin " + origin + " is not in TRACK_CORS_ORIGINS"}}}
}

// validOrigin reports whether o is a web origin: http or https, a host, an
// optional port, and nothing else.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != "" &&
		!strings.HasSuffix(u.Host, ":") && u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" &&
		!u.ForceQuery && o == u.Scheme+"://"+u.Host
}
