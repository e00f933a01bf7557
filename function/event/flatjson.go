package event

import "unicode/utf8"

// This file is the fast path of decoding: it reads the common shape of an
// event object, or an array of them, in one pass over the bytes, without
// encoding/json's token machinery and its allocation per token
// (BenchmarkDecodePlain and BENCHMARKS.md show the difference). It accepts
// only input whose meaning is plain: objects of known, distinct fields
// whose values are strings without escape sequences. For anything else it
// reports false and sets nothing, and the general path (json.Decoder)
// decodes the input and names the problem, so that clients get the same
// answers either way; FuzzFlatJSONAgrees checks that the two agree.

// plainFields are the fields of the plain form; ceDataFields those of a
// CloudEvent's data, whose id and time are the CloudEvent's own.
var (
	plainFields  = []string{"id", "timestamp", "username", "target", "description"}
	ceDataFields = []string{"username", "target", "description"}
)

// maxFlatFields bounds the fields of the objects the fast path reads.
const maxFlatFields = 8

// flatObject is where one object's string values lie in the input, by
// field index; set tells which fields were present.
type flatObject struct {
	bounds [maxFlatFields][2]int
	set    uint8
}

// fastFlatObject decodes data, one object and nothing after it but white
// space, into f, knowing the fields names. It reports whether it could;
// when not, it set nothing.
func fastFlatObject(data []byte, names []string, f *fields) bool {
	obj, end, ok := scanFlatObject(data, skipSpace(data, 0), names)
	if !ok || skipSpace(data, end) != len(data) {
		return false
	}
	if obj.set != 0 {
		obj.store(string(data), new([maxFlatFields]string), names, f)
	}
	return true
}

// fastFlatArray reads data, a JSON array of such objects and nothing after
// it but white space. It reports false when any part of data is outside
// the fast path's shape.
func fastFlatArray(data []byte, names []string) ([]flatObject, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	var out []flatObject
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return out, skipSpace(data, i+1) == len(data)
	}
	for {
		obj, end, ok := scanFlatObject(data, i, names)
		if !ok {
			return nil, false
		}
		out = append(out, obj)
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			if skipSpace(data, i+1) != len(data) {
				return nil, false
			}
			return out, true
		default:
			return nil, false
		}
	}
}

// store points each present field of f at its value in vals. The values
// are substrings of src, the input as a string, so that all of them share
// one allocation.
func (o *flatObject) store(src string, vals *[maxFlatFields]string, names []string, f *fields) {
	for k, name := range names {
		if o.set&(1<<k) != 0 {
			vals[k] = src[o.bounds[k][0]:o.bounds[k][1]]
			*f.slot(name) = &vals[k]
		}
	}
}

// scanFlatObject reads the object that starts at data[i] and returns where
// its values lie and the index just after it.
func scanFlatObject(data []byte, i int, names []string) (obj flatObject, end int, ok bool) {
	if len(names) > maxFlatFields || i >= len(data) || data[i] != '{' {
		return obj, 0, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return obj, i + 1, true
	}
	for {
		ks, ke, ok := scanString(data, i)
		if !ok {
			return obj, 0, false
		}
		k := fieldIndex(names, data[ks:ke])
		if k < 0 || obj.set&(1<<k) != 0 {
			return obj, 0, false // unknown or repeated: the general path names it
		}
		i = skipSpace(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return obj, 0, false
		}
		vs, ve, ok := scanString(data, skipSpace(data, i+1))
		if !ok {
			return obj, 0, false // not a string, or one with escapes
		}
		obj.bounds[k], obj.set = [2]int{vs, ve}, obj.set|1<<k
		i = skipSpace(data, ve+1)
		if i >= len(data) {
			return obj, 0, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return obj, i + 1, true
		default:
			return obj, 0, false
		}
	}
}

// scanString reads the string that starts at data[i] and returns the
// bounds of its contents; the closing quote is at data[end]. Strings with
// escape sequences, control characters or invalid UTF-8 are left to the
// general path.
func scanString(data []byte, i int) (start, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, 0, false
	}
	ascii := true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(data[i+1:j]) {
				return 0, 0, false
			}
			return i + 1, j, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, 0, false
}

func fieldIndex(names []string, name []byte) int {
	for k, f := range names {
		if f == string(name) {
			return k
		}
	}
	return -1
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
