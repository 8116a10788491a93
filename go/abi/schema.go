package abi

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// SchemaFile is where the JSON Schema of the ABI is committed, relative to
// the repository root.
const SchemaFile = "docs/reference/abi.schema.json"

type object = map[string]any

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textType      = reflect.TypeFor[encoding.TextMarshaler]()
)

// Schema is the JSON Schema (draft 2020-12) of every export's request and
// result, of the envelope and of each kind of event, generated from the Go
// types and described by their doc comments. Objects refuse unknown keys
// (additionalProperties false); fields without omitempty are required: a
// request must carry them, a result always does.
func Schema(docs Docs) ([]byte, error) {
	g := gen{docs: docs}
	defs := object{}
	var exports []any
	for _, e := range Exports {
		if e.Result == nil {
			return nil, fmt.Errorf("no result type for %s", e.Name)
		}
		defs[e.Name+"Request"] = g.typeSchema(reflect.TypeOf(e.Request), false)
		defs[e.Name+"Result"] = g.typeSchema(reflect.TypeOf(e.Result), true)
		exports = append(exports, object{
			"name": e.Name, "description": e.Doc,
			"request": object{"$ref": "#/$defs/" + e.Name + "Request"},
			"result":  object{"$ref": "#/$defs/" + e.Name + "Result"},
		})
	}
	defs["Envelope"] = g.typeSchema(reflect.TypeFor[Envelope](), true)
	defs["Event"] = g.typeSchema(reflect.TypeFor[Event](), true)
	var kinds []any
	for _, k := range EventKinds {
		kinds = append(kinds, k.EventKind())
	}
	doc := object{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"title":       "liboci C ABI",
		"description": "Generated from go/abi by `cd go && go run ./cmd/abigen`; do not edit. Each JSON export takes its <Name>Request and answers {\"abi_version\", \"ok\", \"result\": <Name>Result} or {\"abi_version\", \"ok\": false, \"error\"}.",
		"abi_version": Version,
		"exports":     exports,
		"event_kinds": kinds,
		"$defs":       defs,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// gen generates schemas, with descriptions from docs.
type gen struct{ docs Docs }

// typeSchema describes t as encoding/json writes and reads it; result
// makes the fields without omitempty required.
func (g gen) typeSchema(t reflect.Type, result bool) object {
	switch {
	case t == timeType:
		return object{"type": "string", "format": "date-time"}
	case t == rawType:
		return object{}
	case t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType):
		return object{} // its own encoding: no shape to promise
	case t.Implements(textType) || reflect.PointerTo(t).Implements(textType):
		return object{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(g.typeSchema(t.Elem(), result))
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nullable(object{"type": "string", "contentEncoding": "base64"})
		}
		return nullable(object{"type": "array", "items": g.typeSchema(t.Elem(), result)})
	case reflect.Map:
		return nullable(object{"type": "object", "additionalProperties": g.typeSchema(t.Elem(), result)})
	case reflect.Struct:
		return g.structSchema(t, result)
	}
	return object{} // an interface: any JSON value
}

func nullable(s object) object {
	if ty, ok := s["type"].(string); ok {
		s["type"] = []string{ty, "null"}
	}
	return s
}

func (g gen) structSchema(t reflect.Type, result bool) object {
	props := object{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := g.typeSchema(f.Type, result)
			if d := g.docs(t.PkgPath(), t.Name(), f.Name); d != "" {
				// Go's convention opens with the Go name; the reader knows the JSON one.
				if rest, ok := strings.CutPrefix(d, f.Name+" "); ok {
					d = name + " " + rest
				}
				p["description"] = d
			}
			props[name] = p
			if !slices.Contains(strings.Split(opts, ","), "omitempty") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := object{"type": "object", "properties": props, "additionalProperties": false}
	if d := g.docs(t.PkgPath(), t.Name(), ""); d != "" {
		s["description"] = d
	}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	return s
}
