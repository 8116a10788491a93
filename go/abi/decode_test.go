package abi

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestDecodeRefusesKeysNoFieldNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		into  any
		field string
	}{
		{`{"reference":"r","connections":4}`, &PullManifestRequest{}, "connections"},
		{`{"Reference":"r"}`, &PullManifestRequest{}, "Reference"}, // encoding/json alone would take it
		{`{"reference":"r","blobs":[{"digest":"d","path":"p"},{"digest":"d","sise":1}]}`, &PullBlobsRequest{}, "blobs[1].sise"},
	} {
		err := Decode([]byte(c.in), c.into)
		var u *UnknownFieldError
		if !errors.As(err, &u) || u.Field != c.field || len(u.Known) == 0 {
			t.Errorf("%s: error %v, want unknown field %q", c.in, err, c.field)
		}
	}
}

func TestDecodeTakesEveryFieldAndNothingAfter(t *testing.T) {
	t.Parallel()
	var r PullModelRequest
	in := `{"reference":"r","env":{"A":"1"},"ca_file":"c","connections":2,"cache_dir":"d","offline":true,"timeout_ms":5,"max_entries":3}`
	if err := Decode([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Reference != "r" || r.Env["A"] != "1" || r.CAFile != "c" || r.Connections != 2 || r.CacheDir != "d" ||
		r.Offline == nil || !*r.Offline || r.CallControl().TimeoutMS != 5 || r.MaxEntries != 3 {
		t.Errorf("decoded %+v", r)
	}
	for _, bad := range []string{`{"reference":"r"} {}`, `{"reference":1}`, `[]`, ``} {
		if err := Decode([]byte(bad), &r); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// Each export takes the control fields and its own; the cache exports take
// nothing of the network, and the read of progress nothing of the cache.
func TestExportsTakeTheirOwnFields(t *testing.T) {
	t.Parallel()
	fields := map[string][]string{}
	for _, e := range Exports {
		for k := range Fields(reflect.TypeOf(e.Request)) {
			fields[e.Name] = append(fields[e.Name], k)
		}
		if !slices.Contains(fields[e.Name], "timeout_ms") || !slices.Contains(fields[e.Name], "operation_id") {
			t.Errorf("%s takes no control fields", e.Name)
		}
	}
	for export, absent := range map[string][]string{
		"CacheList":         {"connections", "reference", "ca_file"},
		"InspectModel":      {"local_dir", "connections", "direct_io"},
		"PullManifest":      {"connections", "cache_dir"},
		"PushModel":         {"connections", "chunk_size"},
		"OperationProgress": {"env", "cache_dir"},
		"CacheSync":         {"env", "cache_dir"},
	} {
		for _, f := range absent {
			if slices.Contains(fields[export], f) {
				t.Errorf("%s takes %s", export, f)
			}
		}
	}
}

func TestDecodeRefusesARequestWithoutARequiredKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		into  any
		field string
	}{
		{`{"env":{}}`, &PullManifestRequest{}, "reference"},
		{`{"reference":"r","blobs":[{"digest":"d","path":"p"},{"digest":"d"}]}`, &PullBlobsRequest{}, "blobs[1].path"},
		{`{"wait_ms":5}`, &OperationProgressRequest{}, "id"},
	} {
		err := Decode([]byte(c.in), c.into)
		var m *MissingFieldError
		if !errors.As(err, &m) || m.Field != c.field {
			t.Errorf("%s: error %v, want missing field %q", c.in, err, c.field)
		}
	}
}
