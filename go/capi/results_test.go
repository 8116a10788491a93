package capi

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oci-client/liboci/abi"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The committed docs/abi.schema.json is what the Go types give now, so a
// field added to a request or result without regenerating it fails here.
func TestCommittedSchemaIsUpToDate(t *testing.T) {
	t.Parallel()
	want, err := abi.Schema(abi.SourceDocs(".."))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", abi.SchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `cd go && go run ./cmd/abigen`", abi.SchemaFile)
	}
}

// The schema says what the exports really take and answer: a request is
// checked against it, and so is a real result.
func TestSchemaDescribesRealRequestsAndResults(t *testing.T) {
	t.Parallel()
	c := jsonschema.NewCompiler()
	compile := func(def string) *jsonschema.Schema {
		s, err := c.Compile(filepath.Join("..", "..", abi.SchemaFile) + "#/$defs/" + def)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func(s *jsonschema.Schema, doc string) error {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		return s.Validate(inst)
	}
	dir := t.TempDir()
	req := `{"cache_dir":` + strconv.Quote(dir) + `,"env":{},"timeout_ms":1000}`
	if err := valid(compile("CacheListRequest"), req); err != nil {
		t.Errorf("%s: %v", req, err)
	}
	if valid(compile("CacheListRequest"), `{"connections":4}`) == nil {
		t.Error("CacheList's schema takes connections")
	}
	out := CacheList(context.Background(), []byte(req))
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(out, &env); err != nil || env.Result == nil {
		t.Fatalf("%s: %v", out, err)
	}
	if err := valid(compile("CacheListResult"), string(env.Result)); err != nil {
		t.Errorf("CacheList's result %s does not fit its schema: %v", env.Result, err)
	}
}
