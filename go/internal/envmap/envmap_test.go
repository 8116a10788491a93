package envmap

import (
	"sort"
	"testing"
)

func TestGetLookup(t *testing.T) {
	e := Env{"SET": "v", "EMPTY": ""}
	if e.Get("SET") != "v" || e.Get("MISSING") != "" {
		t.Error("Get")
	}
	if v, ok := e.Lookup("EMPTY"); !ok || v != "" {
		t.Error("Lookup of a variable set to empty")
	}
	if _, ok := e.Lookup("MISSING"); ok {
		t.Error("Lookup of an unset variable")
	}
	var nilEnv Env
	if nilEnv.Get("X") != "" {
		t.Error("nil Env")
	}
}

func TestFirst(t *testing.T) {
	e := Env{"HTTP_PROXY": "", "http_proxy": "lower", "A": "a"}
	if got := e.First("HTTP_PROXY", "http_proxy"); got != "lower" {
		t.Errorf("First skips empty values: got %q", got)
	}
	e["HTTP_PROXY"] = "upper"
	if got := e.First("HTTP_PROXY", "http_proxy"); got != "upper" {
		t.Errorf("First takes the first set key: got %q", got)
	}
	if got := e.First("X", "Y"); got != "" {
		t.Errorf("First of unset keys = %q", got)
	}
}

func TestList(t *testing.T) {
	e := Env{"A": "1", "B": "x=y", "": "skipped", "BAD=KEY": "skipped", "EMPTY": ""}
	got := e.List()
	sort.Strings(got)
	want := []string{"A=1", "B=x=y", "EMPTY="}
	if len(got) != len(want) {
		t.Fatalf("List() = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("List() = %q, want %q", got, want)
		}
	}
}

func TestFromListAsAShellReadsIt(t *testing.T) {
	e := FromList([]string{"A=1", "B=x=y", "EMPTY=", "A=2", "=hidden", "NOEQUALS"})
	want := Env{"A": "2", "B": "x=y", "EMPTY": ""}
	if len(e) != len(want) {
		t.Fatalf("got %v, want %v", e, want)
	}
	for k, v := range want {
		if got, ok := e.Lookup(k); !ok || got != v {
			t.Fatalf("%s: got %q (%v), want %q", k, got, ok, v)
		}
	}
}
