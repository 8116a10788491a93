package pullmodel_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
)

// packedModel is a config, an unnamed shard, a catch-all code archive with
// no name (as `kit init` packs a model directory) and a named docs archive.
func packedModel(t *testing.T) []layer {
	return []layer{
		{mtWeightConfig, "config.json", []byte(`{"model_type":"tiny"}`)},
		{mtWeight, "", []byte("weights")},
		{mtCodeTarGzip, "", tarGz(t, map[string]string{
			"chat_template.jinja":      "{{ x }}",
			"tokenizer/tokenizer.json": `{"t":1}`,
			"tokenizer/vocab.txt":      "a\n",
			"src/train.py":             "print()",
			"README.md":                "# r",
		})},
		{mtCodeTarGzip, "docs", tarGz(t, map[string]string{"docs/a.md": "a", "docs/guide.json": "{}"})},
	}
}

// files lists every file under dir (through links), but .oci-client.
func files(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".oci-client" {
			return filepath.SkipDir
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func sorted(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(s, " ")
}

func TestPatternsPickEntriesOutOfAnUnnamedArchive(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, packedModel(t)...)
	c := count(reg)
	res := pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.jinja", "tokenizer/*"}})
	want := "chat_template.jinja tokenizer/tokenizer.json tokenizer/vocab.txt"
	if got := files(t, res.Path); got != want || sorted(res.Files) != want {
		t.Errorf("snapshot %q, files %v; want %q", got, res.Files, want)
	}
	wantFile(t, filepath.Join(res.Path, "chat_template.jinja"), "{{ x }}")

	// The archive went into the cache whole: other patterns, or none, need
	// no new download of it, online or offline.
	c.reset()
	md := pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.md"}, Offline: true})
	if got := files(t, md.Path); got != "README.md "+want {
		t.Errorf("after *.md: %q", got)
	}
	again := pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.jinja", "tokenizer/*"}})
	if m, b := c.totals(); b != 0 || again.Path != res.Path {
		t.Errorf("repeat pulls made %d manifest and %d blob requests, at %s", m, b, again.Path)
	}
	full := pull(t, ref, pullmodel.Options{CacheDir: root})
	wantAll := "README.md chat_template.jinja config.json docs/a.md docs/guide.json model.safetensors src/train.py tokenizer/tokenizer.json tokenizer/vocab.txt"
	if got := files(t, full.Path); got != wantAll {
		t.Errorf("full pull after filtered ones: %q, want %q", got, wantAll)
	}
	if n := c.blobs[digestOf(packedModel(t)[2].data)]; n != 0 {
		t.Errorf("the code archive was fetched again %d times", n)
	}
}

func TestAPatternReachesIntoANamedArchive(t *testing.T) {
	t.Parallel()
	_, ref, _, root := setup(t, packedModel(t)...)
	res := pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"docs/*.json"}})
	if got := files(t, res.Path); got != "docs/guide.json" {
		t.Errorf("docs/*.json gave %q", got)
	}
	// Its own path still selects it whole.
	res = pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"docs"}})
	if got := files(t, res.Path); got != "docs/a.md docs/guide.json" {
		t.Errorf("docs gave %q", got)
	}
}

func TestPatternsThatSelectNothingFailAndListTheFiles(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, packedModel(t)...)
	_, err := pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.nothing"}})
	wantCode(t, err, oci.CodeNoMatch)
	var e *oci.Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	details, _ := e.Details.(map[string]any)
	listed, _ := details["files"].([]string)
	// The archive had to be fetched to know; its entries are listed.
	for _, f := range []string{"config.json", "model.safetensors", "chat_template.jinja", "docs"} {
		if !slices.Contains(listed, f) || !strings.Contains(err.Error(), f) {
			t.Errorf("%q not listed: %v (%v)", f, listed, err)
		}
	}
	if !strings.Contains(err.Error(), `"*.nothing"`) {
		t.Errorf("the message does not name the pattern: %v", err)
	}
	// Nothing that could match: no layer is fetched.
	c := count(reg)
	_, err = pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: cacheDir(t), Allow: []string{"*.nothing"}, Ignore: []string{"code.tar.gz"}})
	wantCode(t, err, oci.CodeNoMatch)
	if _, b := c.totals(); b > 1 { // the config
		t.Errorf("%d blob requests for a pull that selects nothing", b)
	}
	// Where an empty selection is fine, it is an empty directory.
	res := pull(t, ref, pullmodel.Options{CacheDir: root, Allow: []string{"*.nothing"}, AllowNoMatch: true})
	if len(res.Files) != 0 {
		t.Errorf("files %v", res.Files)
	}
	local := filepath.Join(t.TempDir(), "local")
	_, err = pullmodel.Pull(testCtx(t), client(t), ref, pullmodel.Options{CacheDir: root, LocalDir: local, Allow: []string{"*.nothing"}})
	wantCode(t, err, oci.CodeNoMatch)
}

func TestPatternsPickEntriesIntoALocalDir(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, packedModel(t)...)
	local := filepath.Join(t.TempDir(), "local")
	res := pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: local, Allow: []string{"*.jinja", "tokenizer/*"}})
	want := "chat_template.jinja tokenizer/tokenizer.json tokenizer/vocab.txt"
	if got := files(t, local); got != want || sorted(res.Files) != want {
		t.Errorf("local dir %q, files %v; want %q", got, res.Files, want)
	}
	if fi, err := os.Lstat(filepath.Join(local, "chat_template.jinja")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("chat_template.jinja is not a real file: %v", err)
	}
	c := count(reg)
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: local, Allow: []string{"*.md"}, Offline: true})
	if got := files(t, local); got != "README.md "+want {
		t.Errorf("after *.md: %q", got)
	}
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: local})
	wantAll := "README.md chat_template.jinja config.json docs/a.md docs/guide.json model.safetensors src/train.py tokenizer/tokenizer.json tokenizer/vocab.txt"
	if got := files(t, local); got != wantAll {
		t.Errorf("full pull after filtered ones: %q, want %q", got, wantAll)
	}
	if n := c.blobs[digestOf(packedModel(t)[2].data)]; n != 0 {
		t.Errorf("the code archive was fetched again %d times", n)
	}
	// Another directory, offline, with patterns: from the cache's tree.
	other := filepath.Join(t.TempDir(), "other")
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: other, Allow: []string{"src/"}, Offline: true})
	if got := files(t, other); got != "src/train.py" {
		t.Errorf("offline into another dir: %q", got)
	}
}
