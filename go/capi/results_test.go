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
	"github.com/oci-client/liboci/internal/testutil"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The committed docs/reference/abi.schema.json is what the Go types give now, so a
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
	if err := valid(compile("CacheListRequest"), `{"env":{}}`); err != nil {
		t.Errorf("a request without cache_dir: %v", err)
	}
	if valid(compile("PullManifestRequest"), `{"env":{}}`) == nil {
		t.Error("PullManifest's schema takes a request without its reference")
	}

	// A blob pulled through a retry, with its events, and a failure: whole
	// envelopes, results and events fit too.
	reg := testutil.NewRegistry(t)
	data := testutil.RandomBytes(t, 3000)
	digest := testutil.PushBlob(t, reg.Ref("app", ""), data)
	reg.Use(failFirst(1, 503))
	out = PullBlob(context.Background(), request(t, map[string]any{
		"reference": reg.Ref("app", ""), "env": tempEnv(t), "digest": digest, "path": filepath.Join(dir, "b"),
		"events": true, "log_level": "debug",
	}))
	if err := valid(compile("Envelope"), string(out)); err != nil {
		t.Errorf("PullBlob's envelope %s does not fit its schema: %v", out, err)
	}
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	if err := valid(compile("PullBlobResult"), string(env.Result)); err != nil {
		t.Errorf("PullBlob's result %s does not fit its schema: %v", env.Result, err)
	}
	if !strings.Contains(string(out), `"kind":"blob_retried"`) {
		t.Errorf("no event in %s", out)
	}
	out = PullManifest(context.Background(), request(t, map[string]any{"reference": reg.Ref("app", ":nope"), "env": tempEnv(t)}))
	if err := valid(compile("Envelope"), string(out)); err != nil || !strings.Contains(string(out), `"ok":false`) {
		t.Errorf("a failed envelope %s does not fit its schema: %v", out, err)
	}
}
