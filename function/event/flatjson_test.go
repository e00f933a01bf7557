package event

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flatResult is what decoding one object produced: each field's value, or
// absent.
type flatResult map[string]string

// resultOf lists the fields of f that the form of names knows.
func resultOf(f fields, names []string) flatResult {
	r := flatResult{}
	for _, name := range names {
		if v := *f.slot(name); v != nil {
			r[name] = *v
		}
	}
	return r
}

var flatSeeds = []string{
	`{"username":"John Doe","target":"https://www.google.com/","description":"VIEW"}`,
	` {"id":"a-1", "timestamp" : "2026-11-26T10:00:00Z",` + "\n\t" + `"username":"Jöhn","target":"https://e.com/","description":"CLICK"} `,
	`{}`,
	`{"username":"x","username":"y"}`,
	`{"username":"a\"b"}`,
	`{"username":"a\u0041"}`,
	`{"username":1}`,
	`{"username":null}`,
	`{"other":"x"}`,
	`{"username":"x"} {}`,
	`{"username":"x",}`,
	`{"username" "x"}`,
	"{\"username\":\"\xff\"}",
	"{\"username\":\"a\x01\"}",
	`[{"username":"a"},{"target":"b"}]`,
	`[]`,
	` [ ] `,
	`[{"username":"a"},]`,
	`[{"username":"a"} {"username":"b"}]`,
	`[{"username":"a"},1]`,
	`[{"username":"a"}]x`,
	`[{"username":{"x":"y"}}]`,
	`[[]]`,
}

// FuzzFlatJSONAgrees checks that the fast path of flatjson.go only ever
// accepts what the general path accepts, with the same values, and that
// it sets nothing when it declines.
func FuzzFlatJSONAgrees(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, names := range [][]string{plainFields, ceDataFields} {
			var fast, general fields
			if fastFlatObject(data, names, &fast) {
				if err := decodeFlatObjectGeneral(data, names, &general); err != nil {
					t.Fatalf("fast path accepted %q with fields %v, the general path says %v", data, names, err)
				}
				if diff := cmp.Diff(resultOf(general, names), resultOf(fast, names)); diff != "" {
					t.Fatalf("%q with fields %v (-general +fast):\n%s", data, names, diff)
				}
			} else if fast != (fields{}) {
				t.Fatalf("fast path declined %q with fields %v but set %v", data, names, resultOf(fast, names))
			}
		}

		objs, ok := fastFlatArray(data, plainFields)
		if !ok {
			return
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			t.Fatalf("fast path accepted the array %q, encoding/json says %v", data, err)
		}
		if len(raws) != len(objs) {
			t.Fatalf("array %q: fast path read %d elements, encoding/json %d", data, len(objs), len(raws))
		}
		src := string(data)
		for i := range objs {
			var fast, general fields
			objs[i].store(src, new([maxFlatFields]string), plainFields, &fast)
			if err := decodeFlatObjectGeneral(raws[i], plainFields, &general); err != nil {
				t.Fatalf("array %q, element %d: fast path accepted it, the general path says %v", data, i, err)
			}
			if diff := cmp.Diff(resultOf(general, plainFields), resultOf(fast, plainFields)); diff != "" {
				t.Fatalf("array %q, element %d (-general +fast):\n%s", data, i, diff)
			}
		}
	})
}

// TestFlatJSONTakesTheCommonShape pins which inputs the fast path reads,
// so that a change that quietly sends every request down the general path
// shows here rather than only in the benchmarks.
func TestFlatJSONTakesTheCommonShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{flatSeeds[0], true},
		{flatSeeds[1], true},
		{`{}`, true},
		{`{"username":"a\"b"}`, false},
		{`{"username":"x","username":"y"}`, false},
		{`{"username":1}`, false},
		{`{"other":"x"}`, false},
		{`{"username":"x"} {}`, false},
		{"{\"username\":\"\xff\"}", false},
	} {
		var f fields
		if got := fastFlatObject([]byte(tc.in), plainFields, &f); got != tc.fast {
			t.Errorf("fastFlatObject(%q): got %v, want %v", tc.in, got, tc.fast)
		}
	}
	for _, tc := range []struct {
		in   string
		n    int
		fast bool
	}{
		{`[{"username":"a"},{"target":"b"}]`, 2, true},
		{` [ ] `, 0, true},
		{`[{"username":"a"},]`, 0, false},
		{`[{"username":"a"},1]`, 0, false},
		{`[{"username":"a"}]x`, 0, false},
	} {
		objs, ok := fastFlatArray([]byte(tc.in), plainFields)
		if ok != tc.fast || len(objs) != tc.n {
			t.Errorf("fastFlatArray(%q): got %d objects, %v; want %d, %v", tc.in, len(objs), ok, tc.n, tc.fast)
		}
	}
}

// TestFlatFieldsMatchSlots keeps the field lists of the forms within the
// fields that slot knows.
func TestFlatFieldsMatchSlots(t *testing.T) {
	t.Parallel()
	var f fields
	for _, names := range [][]string{plainFields, ceDataFields} {
		for _, name := range names {
			if f.slot(name) == nil {
				t.Errorf("a form names %q, which fields.slot does not know", name)
			}
		}
	}
	if got, want := len(plainFields), 5; got != want {
		t.Errorf("plainFields: got %d fields, want %d (every field of the plain form)", got, want)
	}
	if got, want := len(ceDataFields), 3; got != want {
		t.Errorf("ceDataFields: got %d fields, want %d (username, target, description)", got, want)
	}
}
