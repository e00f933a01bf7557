// Package contract checks what the tracking function answers against its
// OpenAPI 3.1 description, function/openapi.yaml: every status, header and
// body. The suites in test/ route their HTTP clients through
// Checker.Transport, so every answer they see is checked; this package's
// own tests send every kind of request the API has, and run schemathesis
// against the description when it is installed.
package contract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// SpecPath is where the description lives, found from this source file so
// that every test package finds it whatever its directory.
func SpecPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "function", "openapi.yaml")
}

// Checker validates answers. It is safe for concurrent use.
type Checker struct {
	mu        sync.Mutex
	validator validator.Validator
	problem   *base.Schema
	schemas   schema_validation.SchemaValidator
	methods   map[string][]string // declared methods of each path, upper case

	checked  map[string]int // answers checked, by kind ("POST /track 201")
	failures []string
}

// maxPerKind bounds the answers checked of one kind, so that the load
// tests' tens of thousands of identical 201s and 503s cost little; the
// first ones of every kind are always checked.
const maxPerKind = 2000

// Load reads and validates the description.
func Load() (*Checker, error) {
	spec, err := os.ReadFile(SpecPath())
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", SpecPath(), err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("%s: openapi %s, want 3.1", SpecPath(), v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", SpecPath(), err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("validator for %s: %w", SpecPath(), errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		var msgs []string
		for _, e := range verrs {
			msgs = append(msgs, describe(e.Message, e.Reason, e.SchemaValidationErrors))
		}
		return nil, fmt.Errorf("%s is not a valid OpenAPI document:\n%s", SpecPath(), strings.Join(msgs, "\n"))
	}
	problem := model.Model.Components.Schemas.GetOrZero("Problem")
	if problem == nil {
		return nil, fmt.Errorf("%s: no Problem schema", SpecPath())
	}
	methods := map[string][]string{}
	for p, item := range model.Model.Paths.PathItems.FromOldest() {
		for m := range item.GetOperations().KeysFromOldest() {
			methods[p] = append(methods[p], strings.ToUpper(m))
		}
		sort.Strings(methods[p])
	}
	return &Checker{
		validator: v,
		problem:   problem.Schema(),
		schemas:   schema_validation.NewSchemaValidator(),
		methods:   methods,
		checked:   map[string]int{},
	}, nil
}

// Check validates one answer to req. A path the description does not list
// must answer a 404 problem, a method it does not list for a path a 405
// problem whose Allow header names the methods it does list.
func (c *Checker) Check(req *http.Request, status int, header http.Header, body []byte) error {
	kind := fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, status)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked[kind]++
	if c.checked[kind] > maxPerKind {
		return nil
	}
	var problems []string
	declared, listed := c.methods[req.URL.Path]
	switch {
	case !listed:
		problems = c.checkProblem(http.StatusNotFound, status, header, body)
	case !slices.Contains(declared, req.Method):
		problems = c.checkProblem(http.StatusMethodNotAllowed, status, header, body)
		if allow := splitList(header.Get("Allow")); !slices.Equal(allow, declared) {
			problems = append(problems, fmt.Sprintf("Allow %q, want the declared methods %q", header.Get("Allow"), strings.Join(declared, ", ")))
		}
	default:
		resp := &http.Response{
			StatusCode: status,
			Header:     header,
			Body:       io.NopCloser(bytes.NewReader(body)),
			Request:    req,
		}
		if ok, errs := c.validator.ValidateHttpResponse(req, resp); !ok {
			for _, e := range errs {
				problems = append(problems, describe(e.Message, e.Reason, e.SchemaValidationErrors))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	err := fmt.Errorf("%s: %s\n  body: %s", kind, strings.Join(problems, "; "), clip(body))
	c.failures = append(c.failures, err.Error())
	return err
}

// checkProblem checks an answer the description covers only in words: a
// path it does not list (404) or a method it does not list (405).
func (c *Checker) checkProblem(want, status int, header http.Header, body []byte) []string {
	var problems []string
	if status != want {
		problems = append(problems, fmt.Sprintf("got %d, want %d for what the description does not list", status, want))
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/problem+json" {
		problems = append(problems, fmt.Sprintf("Content-Type %q, want application/problem+json", header.Get("Content-Type")))
	}
	if ok, errs := c.schemas.ValidateSchemaBytes(c.problem, body); !ok {
		for _, e := range errs {
			problems = append(problems, describe(e.Message, e.Reason, e.SchemaValidationErrors))
		}
	}
	return problems
}

// Transport returns a RoundTripper that checks every answer it carries and
// records each violation for Failures. The body is read whole and handed
// on unchanged.
func (c *Checker) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{checker: c, next: next}
}

type transport struct {
	checker *Checker
	next    http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	_ = t.checker.Check(req, resp.StatusCode, resp.Header, body)
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Failures lists every violation seen so far.
func (c *Checker) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.failures...)
}

// Summary tells how many answers of which kinds were checked.
func (c *Checker) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.checked))
	total := 0
	for k, n := range c.checked {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
		total += n
	}
	sort.Strings(kinds)
	return fmt.Sprintf("contract: %d answers of %d kinds against %s (%s)", total, len(kinds), filepath.Base(SpecPath()), strings.Join(kinds, ", "))
}

// Report fails t for every violation seen so far and logs the summary.
func (c *Checker) Report(t testing.TB) {
	t.Helper()
	for _, f := range c.Failures() {
		t.Errorf("answer breaks the OpenAPI description: %s", f)
	}
	t.Logf("%s", c.Summary())
}

func describe(message, reason string, schemaErrs []*liberrors.SchemaValidationFailure) string {
	var b strings.Builder
	b.WriteString(message)
	if reason != "" && reason != message {
		b.WriteString(" (" + reason + ")")
	}
	for _, s := range schemaErrs {
		fmt.Fprintf(&b, "; %s at %s", s.Reason, s.FieldPath)
	}
	return b.String()
}

// splitList parses a comma-separated header such as Allow, sorted.
func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func clip(b []byte) string {
	const most = 300
	if len(b) > most {
		return string(b[:most]) + "..."
	}
	return string(b)
}
