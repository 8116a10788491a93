package model_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oci-client/liboci/model"
)

// The expectations are Python's fnmatch.fnmatchcase, as huggingface_hub
// calls it (with its "dir/" → "dir/*" rule and '\' as '/').
func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*.json", "config.json", true},
		{"*.json", "a/b.json", true}, // '*' crosses '/'
		{"*.json", "config.json.bak", false},
		{"config.json", "config.json", true},
		{"config.json", "a/config.json", false},
		{"tokenizer/", "tokenizer/vocab.json", true},
		{"tokenizer/", "tokenizer/sub/merges.txt", true},
		{"tokenizer/", "tokenizer", false},
		{"tokenizer/", "tokenizer.json", false},
		{`tokenizer\`, "tokenizer/vocab.json", true},
		{`a\*.json`, "a/b.json", true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"*", "a/b/c", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "a/x/b/y/c", true},
		{"a*b*c", "a/x/b/y/cd", false},
		{"**/*.safetensors", "model.safetensors", false}, // no globstar: "**/" needs a '/'
		{"**/*.safetensors", "x/model.safetensors", true},
		{"?", "a", true},
		{"?", "/", true},
		{"?", "ab", false},
		{"?", "é", true}, // one character, not one byte
		{"model-0000?-of-*.safetensors", "model-00001-of-00004.safetensors", true},
		{"model-0000?-of-*.safetensors", "model-00010-of-00012.safetensors", false},
		{"model-0000?-of-*.safetensors", "model.safetensors", false},
		{"[!a]*", "b.json", true},
		{"[!a]*", "a.json", false},
		{"[!a]*", "/x", true},
		{"[ab]c", "bc", true},
		{"[ab]c", "cc", false},
		{"[a-c]x", "bx", true},
		{"[a-c]x", "dx", false},
		{"[!a-c]x", "dx", true},
		{"[]]", "]", true},   // ']' first is a member
		{"[!]]", "a", true},  // and after '!'
		{"[!]]", "]", false}, //
		{"[]-a]", "^", true}, // range ']'..'a'
		{"[a-]", "-", true},  // a trailing '-' is a member
		{"[-a]", "-", true},  // and a leading one
		{"[!-a]", "b", true},
		{"[!-a]", "-", false},
		{"[z-a]", "m", false},  // reversed range: matches nothing
		{"[z-a]", "z", false},  //
		{"[!z-a]", "m", true},  // negated empty set: any character
		{"[z-ab]", "b", true},  // reversed range dropped, b kept
		{"[z-a!b]", "c", true}, // fnmatch's quirk: the leftover '!' negates
		{"[z-a!b]", "b", false},
		{"[a-c-e]", "-", true}, // "a-c", then '-' and 'e'
		{"[a-c-e]", "d", false},
		{"[^a]", "^", true}, // '^' is not negation
		{"[^a]", "b", false},
		{"[[]", "[", true},
		{"[a[:x]", ":", true}, // no POSIX classes
		{`[\]`, `\`, true},    // a backslash is '/' on both sides, like in huggingface
		{"[*]", "*", true},
		{"[?]", "a", false},
		{"*[0-9].bin", "pytorch_model.bin", false},
		{"*[0-9].bin", "x2.bin", true},
		{"Model.safetensors", "model.safetensors", false}, // case matters
	}
	for _, c := range cases {
		got, err := model.Match(c.pattern, c.name)
		if err != nil || got != c.want {
			t.Errorf("Match(%q, %q) = %v, %v; want %v", c.pattern, c.name, got, err, c.want)
		}
	}
	for _, bad := range []string{"[", "model-[0-9", "[!", "[]", "[!]", "a[b"} {
		if _, err := model.Match(bad, "x"); !errors.Is(err, model.ErrBadPattern) {
			t.Errorf("Match(%q) error %v, want ErrBadPattern", bad, err)
		}
	}
}

func TestFilter(t *testing.T) {
	var files []model.File
	for _, p := range []string{"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
		"tokenizer/vocab.json", "original/consolidated.pth", "README.md", ".gitattributes"} {
		files = append(files, model.File{Path: p})
	}
	paths := func(fs []model.File) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		allow, ignore []string
		want          string
	}{
		{nil, nil, "config.json,model-00001-of-00002.safetensors,model-00002-of-00002.safetensors,tokenizer/vocab.json,original/consolidated.pth,README.md,.gitattributes"},
		{[]string{"*.json", "*.safetensors"}, nil, "config.json,model-00001-of-00002.safetensors,model-00002-of-00002.safetensors,tokenizer/vocab.json"},
		{nil, []string{"original/", ".*", "*.md"}, "config.json,model-00001-of-00002.safetensors,model-00002-of-00002.safetensors,tokenizer/vocab.json"},
		{[]string{"*.json"}, []string{"tokenizer/*"}, "config.json"},
		{[]string{"nothing"}, nil, ""},
	}
	for _, c := range cases {
		got, err := model.Filter(files, c.allow, c.ignore)
		if err != nil || paths(got) != c.want {
			t.Errorf("Filter(%q, %q) = %s, %v; want %s", c.allow, c.ignore, paths(got), err, c.want)
		}
	}
	if got, err := model.Filter(files, []string{"nothing"}, nil); err != nil || got == nil {
		t.Errorf("no match: %v, %v; want an empty list", got, err)
	}
	for _, c := range [][2][]string{{{"*.json", "[a"}, nil}, {nil, {"["}}} {
		if _, err := model.Filter(files, c[0], c[1]); !errors.Is(err, model.ErrBadPattern) {
			t.Errorf("Filter(%q, %q) error %v, want ErrBadPattern", c[0], c[1], err)
		}
	}
}
