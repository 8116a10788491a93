package pullmodel_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/oci"
	"github.com/oci-client/liboci/pullmodel"
	"github.com/oci-client/liboci/transfer"
)

// flip changes one byte of the file at path in place, as a bad sector or a
// stray write would: same size, its state file untouched.
func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func quarantined(t *testing.T, root string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, cache.QuarantineDir))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestVerifyRehashesTrustedBlobsAndFetchesAWrongOneAgain(t *testing.T) {
	t.Parallel()
	reg, ref, digest, root := setup(t, sampleModel(t)...)
	pull(t, ref, pullmodel.Options{CacheDir: root, Sync: true})
	ch, _ := cache.Open(root)
	weights := sampleModel(t)[1].data
	blob := ch.BlobPath(digestOf(weights))
	flip(t, blob)

	// The default trusts the durable state: the wrong byte is served.
	res := pull(t, ref, pullmodel.Options{CacheDir: root})
	if b, _ := os.ReadFile(filepath.Join(res.Path, shard1)); bytes.Equal(b, weights) {
		t.Fatal("the default pull re-hashed a durable blob; this test needs one it trusts")
	}

	c := count(reg)
	res = pull(t, ref, pullmodel.Options{CacheDir: root, Verify: true})
	wantFile(t, filepath.Join(res.Path, shard1), string(weights))
	if _, blobs := c.totals(); blobs != 1 || c.blobs[digestOf(weights)] != 1 {
		t.Errorf("blob requests %v: want the wrong blob fetched once and nothing else", c.blobs)
	}
	if q := quarantined(t, root); len(q) != 1 {
		t.Errorf("quarantine holds %v, want the wrong blob", q)
	}

	// By digest and offline too, and a second look at a flipped blob (one
	// verified this boot) is the same.
	flip(t, blob)
	reg.Server.Close()
	pinned := reg.Ref("org/model", "@"+digest)
	_, err := pullmodel.Pull(testCtx(t), client(t), pinned, pullmodel.Options{CacheDir: root, Verify: true, Offline: true})
	wantCode(t, err, oci.CodeNotCached)
	if got := oci.AsError(err).Error(); !bytes.Contains([]byte(got), []byte(digestOf(weights))) {
		t.Errorf("the offline error %q does not name the wrong blob", got)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("the wrong blob is still in blobs/: %v", err)
	}
	if q := quarantined(t, root); len(q) != 2 {
		t.Errorf("quarantine holds %v, want both wrong copies", q)
	}
}

func TestVerifyReportsEachFileOfACachedSnapshotAsItChecksOut(t *testing.T) {
	t.Parallel()
	_, ref, _, root := setup(t, sampleModel(t)...)
	pull(t, ref, pullmodel.Options{CacheDir: root})
	prog := &transfer.Progress{}
	ctx := transfer.WithProgress(testCtx(t), prog)
	if _, err := pullmodel.Pull(ctx, client(t), ref, pullmodel.Options{CacheDir: root, Verify: true}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range prog.Snapshot().Blobs {
		if b.Present && b.Done && b.Label != "config" { // the config blob, read first
			got = append(got, b.Label)
		}
	}
	want := []string{"config.json", shard1, shard2, "tokenizer/merges.txt", "tokenizer/vocab.json"}
	if len(got) != len(want) {
		t.Fatalf("found %v, want %v in manifest order", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("found %v, want %v in manifest order", got, want)
		}
	}
}

func TestVerifyCopiesIntoALocalDirOnlyWhatHashes(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	pull(t, ref, pullmodel.Options{CacheDir: root, Sync: true})
	ch, _ := cache.Open(root)
	weights := sampleModel(t)[1].data
	flip(t, ch.BlobPath(digestOf(weights)))
	c := count(reg)
	dir := filepath.Join(t.TempDir(), "model")
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir, Verify: true})
	wantFile(t, filepath.Join(dir, shard1), string(weights))
	if n := c.blobs[digestOf(weights)]; n != 1 {
		t.Errorf("the wrong blob was fetched %d times, want once (blob requests %v)", n, c.blobs)
	}
	if q := quarantined(t, root); len(q) != 1 {
		t.Errorf("quarantine holds %v, want the wrong blob", q)
	}
}

func TestVerifyRehashesWhatALocalDirRecordVouchesFor(t *testing.T) {
	t.Parallel()
	reg, ref, _, root := setup(t, sampleModel(t)...)
	dir := filepath.Join(t.TempDir(), "model")
	pull(t, ref, pullmodel.Options{CacheDir: root})
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	weights := sampleModel(t)[1].data
	for _, name := range []string{shard1, "tokenizer/vocab.json"} {
		// Same size and modification time: the record still vouches for it.
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		flip(t, p)
		if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir})
	if b, _ := os.ReadFile(filepath.Join(dir, shard1)); bytes.Equal(b, weights) {
		t.Fatal("the default pull re-hashed a file its record vouches for; this test needs one it trusts")
	}
	c := count(reg)
	pull(t, ref, pullmodel.Options{CacheDir: root, LocalDir: dir, Verify: true})
	wantFile(t, filepath.Join(dir, shard1), string(weights))
	wantFile(t, filepath.Join(dir, "tokenizer/vocab.json"), `{"a":1}`)
	if _, blobs := c.totals(); blobs != 0 {
		t.Errorf("blob requests %v: the cache holds both, want them copied from it", c.blobs)
	}
}
