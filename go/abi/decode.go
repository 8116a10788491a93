package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// UnknownFieldError is a request key that no field of its type names.
type UnknownFieldError struct {
	// Field is the key's path in the request, "blobs[0].sise".
	Field string
	// Known are the keys accepted where it stands.
	Known []string
}

func (e *UnknownFieldError) Error() string {
	return fmt.Sprintf("unknown field %q (known here: %s)", e.Field, strings.Join(e.Known, ", "))
}

// MissingFieldError is a key the request must carry (its field has no
// omitempty) and does not.
type MissingFieldError struct {
	// Field is the key's path in the request, "blobs[0].digest".
	Field string
}

func (e *MissingFieldError) Error() string {
	return fmt.Sprintf("missing field %q", e.Field)
}

// Decode reads the JSON object data into v, a pointer to a request type,
// refusing a key that no field names and the absence of one whose field
// has no omitempty. encoding/json alone would match keys
// case-insensitively ("Reference" for "reference") and, without
// DisallowUnknownFields, drop unknown ones; both hide a caller's mistake.
func Decode(data []byte, v any) error {
	if err := checkKeys(data, reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the request object")
	}
	return nil
}

// checkKeys walks data along t and reports the first key, in document
// key order, that t has no field for. Values of the wrong
// shape are left for the decoder to report.
func checkKeys(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return nil
		}
		fields := Fields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, ok := fields[k]
			if !ok {
				return &UnknownFieldError{Field: path + k, Known: slices.Sorted(maps.Keys(fields))}
			}
			if err := checkKeys(obj[k], ft, path+k+"."); err != nil {
				return err
			}
		}
		for _, k := range Required(t) {
			if _, ok := obj[k]; !ok {
				return &MissingFieldError{Field: path + k}
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		base := strings.TrimSuffix(path, ".")
		for i, item := range items {
			if err := checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d].", base, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Required lists, sorted, the JSON keys of struct type t whose fields have
// no omitempty (promoted ones included): a request must carry them, a
// result always does.
func Required(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, Required(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !slices.Contains(strings.Split(opts, ","), "omitempty") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Fields maps each JSON key of struct type t to its field's type, with the
// fields of untagged embedded structs promoted as encoding/json promotes
// them.
func Fields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range Fields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
