package function

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// decodeEnv fills the fields of cfg that have an env tag from lookup, or
// from their default tag when lookup has no value. It knows the field
// types Config uses: strings, lists of strings (separated by commas or
// white space), integers, booleans, durations and
// encoding.TextUnmarshaler. The first value that
// does not parse is returned as an error naming the variable and the value.
func decodeEnv(cfg *Config, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(cfg).Elem()
	for _, f := range reflect.VisibleFields(v.Type()) {
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		s, ok := lookup(name)
		if !ok {
			if s, ok = f.Tag.Lookup("default"); !ok {
				continue
			}
		}
		if err := setField(v.FieldByIndex(f.Index), s); err != nil {
			return fmt.Errorf("%s: invalid value %q: %v", name, s, err)
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// setField parses s into one field.
func setField(f reflect.Value, s string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	if f.Type() == durationType {
		d, err := time.ParseDuration(s)
		f.SetInt(int64(d))
		return err
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("must be true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return errors.New("must be a whole number")
		}
		f.SetInt(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", f.Type())
		}
		list := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// EnvNames lists every environment variable the function reads, in the
// order of the Config fields.
func EnvNames() []string {
	var names []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if name := f.Tag.Get("env"); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// EnvDefault is the default of the variable name, and whether it has one;
// a variable without a default is empty when unset.
func EnvDefault(name string) (string, bool) {
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if f.Tag.Get("env") == name {
			return f.Tag.Lookup("default")
		}
	}
	return "", false
}
