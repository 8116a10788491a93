package safepath

import (
	"errors"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	good := map[string]string{
		"a":                 "a",
		"./config.json":     "config.json",
		"tokenizer//x.json": "tokenizer/x.json",
		"dir/":              "dir",
		".":                 "",
		"./":                "",
		"a/./b":             "a/b",
		"..a/b..":           "..a/b..",
	}
	for in, want := range good {
		got, err := Clean(in)
		if err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/..", `a\b`, "a\x00b", strings.Repeat("a", MaxLen+1)} {
		_, err := Clean(bad)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Clean(%q) = %v, want *Error", bad, err)
		}
	}
}
