package pushmodel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// published lists dir as a push would, by name, with the content read.
func published(t *testing.T, dir, cache string, followAll bool) (map[string]string, error) {
	t.Helper()
	files, err := listFiles(dir, cache, followAll)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f.abs)
		if err != nil {
			t.Fatal(err)
		}
		out[f.rel] = string(b)
	}
	return out, nil
}

func TestHuggingFaceBlob(t *testing.T) {
	for p, want := range map[string]bool{
		"/h/hub/models--org--name/blobs/0123abcd":   true,
		"/h/hub/datasets--org--data/blobs/0123abcd": true,
		"/h/hub/spaces--org--app/blobs/0123abcd":    true,
		"/h/hub/models--/blobs/0123abcd":            false, // no repository name
		"/h/hub/other/blobs/0123abcd":               false, // a directory merely named blobs
		"/h/hub/models--org--name/blobs/sub/x":      false, // blobs are flat
		"/h/hub/models--org--name/snapshots/r/x":    false,
		"/h/hub/models--org--name/blobs":            false,
		"/etc/passwd":                               false,
	} {
		if got := huggingFaceBlob(p); got != want {
			t.Errorf("huggingFaceBlob(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		dir, p string
		want   bool
	}{
		{"/m", "/m/a", true},
		{"/m", "/m/a/b", true},
		{"/m", "/m/..a", true},
		{"/m", "/m", true},
		{"/m", "/", false},
		{"/m", "/ma", false}, // a prefix of the name is not inside
		{"/m", "/other/a", false},
	} {
		if got := within(c.dir, c.p); got != c.want {
			t.Errorf("within(%s, %s) = %v, want %v", c.dir, c.p, got, c.want)
		}
	}
}

// Links resolving inside the directory publish, whatever the path to
// them: relative, absolute, chained, through "..", through a linked
// directory, or with the directory itself reached through a link.
func TestLinksInsideTheDirectoryPublish(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "model")
	write(t, filepath.Join(dir, "weights", "real.safetensors"), "shard")
	write(t, filepath.Join(dir, "config.json"), "{}")
	link(t, "weights/real.safetensors", filepath.Join(dir, "relative.safetensors"))
	link(t, filepath.Join(dir, "weights", "real.safetensors"), filepath.Join(dir, "absolute.safetensors"))
	link(t, "relative.safetensors", filepath.Join(dir, "chain.safetensors"))
	link(t, "../config.json", filepath.Join(dir, "sub", "up.json"))
	// A link to a directory inside, used as a path component by another link.
	link(t, "weights", filepath.Join(dir, ".wdir"))
	link(t, ".wdir/../config.json", filepath.Join(dir, "via-dir-link.json"))
	via := filepath.Join(base, "via")
	link(t, dir, via)

	want := map[string]string{
		"weights/real.safetensors": "shard", "config.json": "{}", "relative.safetensors": "shard",
		"absolute.safetensors": "shard", "chain.safetensors": "shard", "sub/up.json": "{}", "via-dir-link.json": "{}",
	}
	for _, root := range []string{dir, via, via + "/"} {
		got, err := published(t, root, "", false)
		if err != nil {
			t.Fatalf("%s: %v", root, err)
		}
		if !mapsEqual(got, want) {
			t.Errorf("%s: published %v, want %v", root, got, want)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Links leaving the directory are refused, all named with their resolved
// targets, unless followAll; a target merely in a directory named blobs is
// no cache.
func TestLinksOutOfTheDirectoryAreRefused(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "model")
	write(t, filepath.Join(dir, "config.json"), "{}")
	secret := filepath.Join(base, "secret")
	write(t, secret, "key")
	write(t, filepath.Join(base, "stuff", "blobs", "abc"), "not a cache")
	write(t, filepath.Join(base, "model-sibling", "x"), "sibling") // shares the name's prefix
	link(t, secret, filepath.Join(dir, "absolute"))
	link(t, "../secret", filepath.Join(dir, "relative"))
	link(t, "../model/../secret", filepath.Join(dir, "dotdot"))
	link(t, "absolute", filepath.Join(dir, "chain"))
	link(t, "../stuff/blobs/abc", filepath.Join(dir, "blob"))
	link(t, "../model-sibling/x", filepath.Join(dir, "sibling"))

	_, err := published(t, dir, "", false)
	if err == nil {
		t.Fatal("published links out of the directory")
	}
	for _, l := range []string{"absolute", "relative", "dotdot", "chain"} {
		if !strings.Contains(err.Error(), l+" (a symlink to "+secret+")") {
			t.Errorf("%s is not named with its target in: %v", l, err)
		}
	}
	for _, l := range []string{"blob (a symlink to " + filepath.Join(base, "stuff", "blobs", "abc"), "sibling (a symlink to "} {
		if !strings.Contains(err.Error(), l) {
			t.Errorf("%q is missing from: %v", l, err)
		}
	}
	if !strings.Contains(err.Error(), "follow_symlinks=True") {
		t.Errorf("the error does not say how to publish them anyway: %v", err)
	}

	got, err := published(t, dir, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got["absolute"] != "key" || got["dotdot"] != "key" || got["blob"] != "not a cache" || got["sibling"] != "sibling" {
		t.Errorf("followAll published %v", got)
	}
}

func TestManyRefusedLinksAreCounted(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "model")
	write(t, filepath.Join(base, "secret"), "key")
	for i := range maxNamedLinks + 3 {
		link(t, "../secret", filepath.Join(dir, "l"+string(rune('a'+i))))
	}
	_, err := published(t, dir, "", false)
	if err == nil || !strings.Contains(err.Error(), "(and 3 more)") {
		t.Errorf("got %v", err)
	}
}

// Snapshots of a cache are links into its blobs: this library's cache
// (given as cache) and any huggingface_hub cache publish, with the
// snapshot directory itself possibly reached through a link.
func TestCacheSnapshotsPublish(t *testing.T) {
	base := t.TempDir()
	ours := filepath.Join(base, "cache")
	hex := strings.Repeat("ab", 32)
	write(t, filepath.Join(ours, "blobs", "sha256", hex), "ours")
	snap := filepath.Join(ours, "models", "reg", "org+m", "snapshots", "sha256-"+hex)
	link(t, "../../../../../blobs/sha256/"+hex, filepath.Join(snap, "model.safetensors"))
	// The cache root through a link, as a cache_dir may be.
	cacheLink := filepath.Join(base, "cache-link")
	link(t, ours, cacheLink)

	got, err := published(t, snap, cacheLink, false)
	if err != nil || got["model.safetensors"] != "ours" {
		t.Fatalf("our snapshot: %v, %v", got, err)
	}
	if _, err := published(t, snap, filepath.Join(base, "another-cache"), false); err == nil {
		t.Error("a snapshot of another cache published as if it were this one's")
	}

	hub := filepath.Join(base, "hf", "hub", "models--org--name")
	write(t, filepath.Join(hub, "blobs", "0123abcd"), "hf")
	hfSnap := filepath.Join(hub, "snapshots", "rev")
	link(t, "../../blobs/0123abcd", filepath.Join(hfSnap, "model.safetensors"))
	link(t, "../../../blobs/0123abcd", filepath.Join(hfSnap, "sub", "model.safetensors"))
	link(t, "../../../../blobs/0123abcd", filepath.Join(hfSnap, "deeper", "x", "model.safetensors"))
	got, err = published(t, hfSnap, "", false)
	want := map[string]string{"model.safetensors": "hf", "sub/model.safetensors": "hf", "deeper/x/model.safetensors": "hf"}
	if err != nil || !mapsEqual(got, want) {
		t.Errorf("huggingface_hub snapshot: %v, %v", got, err)
	}
}

func TestDanglingAndLoopingLinksAreRefused(t *testing.T) {
	for name, target := range map[string]string{"dangling": "nowhere", "loop": "loop", "notdir": "config.json/x"} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "config.json"), "{}")
		link(t, target, filepath.Join(dir, name))
		for _, followAll := range []bool{false, true} {
			_, err := published(t, dir, "", followAll)
			if err == nil || !strings.Contains(err.Error(), name+" is a symlink to "+target) {
				t.Errorf("%s (followAll %v): got %v", name, followAll, err)
			}
		}
	}
}

// Hidden names are never published, so a hidden link is not looked at.
func TestHiddenLinksAreIgnored(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "model")
	write(t, filepath.Join(dir, "config.json"), "{}")
	write(t, filepath.Join(base, "secret"), "key")
	link(t, "../secret", filepath.Join(dir, ".key"))
	if got, err := published(t, dir, "", false); err != nil || len(got) != 1 {
		t.Errorf("got %v, %v", got, err)
	}
}
