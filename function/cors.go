package function

import (
	"net/http"
	"net/url"
	"strings"

	"tracker/function/event"
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

// headers is middleware that sets the CORS headers of every answer: to a
// request with an Origin that may send, the origin allowed and Retry-After
// exposed. With a list of origins the answer depends on the Origin, which
// caches must know.
func (c corsPolicy) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !c.any {
			h.Add("Vary", "Origin")
		}
		if origin := r.Header.Get("Origin"); origin != "" && c.allows(origin) {
			if c.any {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
			}
			// A page may read Retry-After to know when to send again.
			h.Set("Access-Control-Expose-Headers", "Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

// allowedOnly is middleware that refuses, with 403, a request from a page
// whose origin may not send events. Clients that send no Origin are not
// browsers, and not affected.
func (c corsPolicy) allowedOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !c.allows(origin) {
			writeProblem(w, r, errOriginNotAllowed(origin))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// preflightMaxAge is how long, in seconds, a browser may keep a
// preflight's answer (Chromium keeps at most two hours).
const preflightMaxAge = "7200"

// preflight answers OPTIONS /track: to a browser's preflight, that it may
// POST with the headers it asked for; to anyone, which methods there are.
// The answer depends on all three request headers it reads, so it names
// them in Vary (headers added Origin already when the list is not "*").
func (c corsPolicy) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Allow", "OPTIONS, POST")
	if c.any {
		h.Add("Vary", "Origin")
	}
	h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
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
	return &apiError{Status: http.StatusForbidden, Detail: "pages of this origin may not send events here", Reason: "origin_not_allowed",
		Errors: []event.FieldError{{Field: "Origin", Reason: "origin_not_allowed", Message: "origin " + origin + " is not in TRACK_CORS_ORIGINS"}}}
}

// validOrigin reports whether o is a web origin: http or https, a host, an
// optional port, and nothing else.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != "" &&
		!strings.HasSuffix(u.Host, ":") && u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" &&
		!u.ForceQuery && o == u.Scheme+"://"+u.Host
}
