package function

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flatResult is what decoding one object produced: each field's value, or
// absent.
type flatResult map[string]string

func plainResult(p plainEvent) flatResult {
	r := flatResult{}
	for _, name := range plainFields {
		if v := *p.slot(name); v != nil {
			r[name] = *v
		}
	}
	return r
}

func ceDataResult(d ceData) flatResult {
	r := flatResult{}
	for _, name := range ceDataFields {
		if v := *d.slot(name); v != nil {
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
		var fastP, generalP plainEvent
		if fastFlatObject(data, plainFields, fastP.slot) {
			if err := decodeFlatObjectGeneral(data, generalP.slot); err != nil {
				t.Fatalf("fast path accepted %q, the general path says %v", data, err)
			}
			if diff := cmp.Diff(plainResult(generalP), plainResult(fastP)); diff != "" {
				t.Fatalf("%q (-general +fast):\n%s", data, diff)
			}
		} else if fastP != (plainEvent{}) {
			t.Fatalf("fast path declined %q but set %v", data, plainResult(fastP))
		}

		var fastD, generalD ceData
		if fastFlatObject(data, ceDataFields, fastD.slot) {
			if err := decodeFlatObjectGeneral(data, generalD.slot); err != nil {
				t.Fatalf("fast path accepted %q as CloudEvent data, the general path says %v", data, err)
			}
			if diff := cmp.Diff(ceDataResult(generalD), ceDataResult(fastD)); diff != "" {
				t.Fatalf("%q as CloudEvent data (-general +fast):\n%s", data, diff)
			}
		} else if fastD != (ceData{}) {
			t.Fatalf("fast path declined %q as CloudEvent data but set %v", data, ceDataResult(fastD))
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
			var fast, general plainEvent
			objs[i].store(src, new([maxFlatFields]string), plainFields, fast.slot)
			if err := decodeFlatObjectGeneral(raws[i], general.slot); err != nil {
				t.Fatalf("array %q, element %d: fast path accepted it, the general path says %v", data, i, err)
			}
			if diff := cmp.Diff(plainResult(general), plainResult(fast)); diff != "" {
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
		var p plainEvent
		if got := fastFlatObject([]byte(tc.in), plainFields, p.slot); got != tc.fast {
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

// TestFlatFieldsMatchSlots keeps the field lists of the fast path equal to
// the fields the slot methods know.
func TestFlatFieldsMatchSlots(t *testing.T) {
	t.Parallel()
	var p plainEvent
	var d ceData
	for _, name := range plainFields {
		if p.slot(name) == nil {
			t.Errorf("plainFields names %q, which plainEvent.slot does not know", name)
		}
	}
	for _, name := range ceDataFields {
		if d.slot(name) == nil {
			t.Errorf("ceDataFields names %q, which ceData.slot does not know", name)
		}
	}
	if got, want := len(plainFields), 5; got != want {
		t.Errorf("plainFields: got %d fields, want %d (every field of plainEvent)", got, want)
	}
	if got, want := len(ceDataFields), 3; got != want {
		t.Errorf("ceDataFields: got %d fields, want %d (every field of ceData)", got, want)
	}
}
