package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// putBlob stores data as a trusted blob, as a pull leaves it.
func putBlob(t *testing.T, c *Cache, data []byte) string {
	t.Helper()
	d := digestOf(data)
	p := c.BlobPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MarkVerified(p); err != nil {
		t.Fatal(err)
	}
	return d
}

func snapshotOf(c *Cache, t *testing.T, repo string, files map[string][]byte) *Snapshot {
	t.Helper()
	s := &Snapshot{Registry: "reg.test", Repository: repo, Manifest: digestOf([]byte(repo)), Files: map[string]Entry{}}
	for name, data := range files {
		d := putBlob(t, c, data)
		s.Files[name] = Entry{Type: "file", Digest: d, Size: int64(len(data)), Layer: d}
		s.Layers = append(s.Layers, d)
	}
	if err := c.WriteSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRef("reg.test", repo, "v1", s.Manifest); err != nil {
		t.Fatal(err)
	}
	return s
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func byDigest(r *Checked) map[string]BlobCheck {
	out := map[string]BlobCheck{}
	for _, b := range r.Blobs {
		out[b.Digest] = b
	}
	return out
}

func TestCheckFindsAFlippedByteAndMovesTheBlobAside(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, bad := []byte("the good weights"), []byte("the weights that rot")
	s := snapshotOf(c, t, "org/model", map[string][]byte{"a.bin": good, "b.bin": bad})
	badPath := c.BlobPath(digestOf(bad))
	flipByte(t, badPath)
	if TrustOf(badPath) == Unverified {
		t.Fatal("the flipped blob should still be trusted by its state: that is the bug Check is for")
	}

	r, err := c.Check(context.Background(), []*Snapshot{s}, CheckOptions{MoveAside: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Checked != 2 || r.BytesHashed != int64(len(good)+len(bad)) {
		t.Errorf("checked %d blobs, %d bytes; want 2, %d", r.Checked, r.BytesHashed, len(good)+len(bad))
	}
	got := byDigest(r)
	if b := got[digestOf(good)]; b.Status != StatusOK || !b.Fixed {
		t.Errorf("good blob: %+v", b)
	}
	if TrustOf(c.BlobPath(digestOf(good))) != Durable {
		t.Error("a blob that checks out should be recorded durable")
	}
	b := got[digestOf(bad)]
	if b.Status != StatusCorrupt || b.Fixed || b.MovedTo == "" || b.Action != "moved aside" {
		t.Fatalf("bad blob: %+v", b)
	}
	if len(b.Models) != 1 || b.Models[0] != "reg.test/org/model@"+s.Manifest {
		t.Errorf("models of the bad blob: %v", b.Models)
	}
	if _, err := os.Stat(badPath); !errors.Is(err, os.ErrNotExist) {
		t.Error("the corrupt blob is still served from blobs/")
	}
	if _, err := os.Stat(statePath(badPath)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the corrupt blob's state file is left behind")
	}
	if !strings.HasPrefix(b.MovedTo, filepath.Join(c.Root, QuarantineDir)+string(filepath.Separator)) {
		t.Errorf("moved to %s, not into quarantine/", b.MovedTo)
	}
	kept, err := os.ReadFile(b.MovedTo)
	if err != nil || len(kept) != len(bad) || string(kept) == string(bad) {
		t.Errorf("the quarantined copy should hold the flipped bytes: %q, %v", kept, err)
	}

	// Checked again, the blob is missing: the snapshot still needs it.
	r, err = c.Check(context.Background(), []*Snapshot{s}, CheckOptions{MoveAside: true})
	if err != nil {
		t.Fatal(err)
	}
	if b := byDigest(r)[digestOf(bad)]; b.Status != StatusMissing || b.Fixed || b.Size != int64(len(bad)) {
		t.Errorf("second check of the moved blob: %+v", b)
	}
	if r.BytesHashed != int64(len(good)) {
		t.Errorf("second check hashed %d bytes, want %d", r.BytesHashed, len(good))
	}
}

func TestCheckWithoutMoveAsideChangesNothing(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("some bytes")
	s := snapshotOf(c, t, "m", map[string][]byte{"f": data})
	p := c.BlobPath(digestOf(data))
	flipByte(t, p)
	before := TrustOf(p)
	r, err := c.Check(context.Background(), []*Snapshot{s}, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b := byDigest(r)[digestOf(data)]; b.Status != StatusCorrupt || b.MovedTo != "" || b.Fixed {
		t.Errorf("report-only check: %+v", b)
	}
	if _, err := os.Stat(p); err != nil || TrustOf(p) != before {
		t.Errorf("a report-only check moved the blob or changed its state: %v", err)
	}
}

func TestCheckAllFindsOrphansAndSizeChanges(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a file of the model")
	s := snapshotOf(c, t, "m", map[string][]byte{"f": data})
	orphan := putBlob(t, c, []byte("no snapshot uses this"))
	flipByte(t, c.BlobPath(orphan))
	// Grown: caught by its size, without hashing it.
	if err := os.WriteFile(c.BlobPath(digestOf(data)), append(data, '!'), 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := c.AllSnapshots()
	if err != nil || len(all) != 1 || all[0].Manifest != s.Manifest {
		t.Fatalf("AllSnapshots: %v, %v", all, err)
	}
	r, err := c.Check(context.Background(), all, CheckOptions{All: true, MoveAside: true})
	if err != nil {
		t.Fatal(err)
	}
	got := byDigest(r)
	if r.Checked != 2 {
		t.Errorf("checked %d, want 2", r.Checked)
	}
	if b := got[orphan]; b.Status != StatusCorrupt || !b.Fixed || b.MovedTo == "" || len(b.Models) != 0 {
		t.Errorf("orphan: %+v (moved aside and used by nothing: fixed)", b)
	}
	if b := got[digestOf(data)]; b.Status != StatusCorrupt || b.Fixed || b.MovedTo == "" {
		t.Errorf("grown blob: %+v", b)
	}
	if r.BytesHashed != int64(len("no snapshot uses this")) {
		t.Errorf("hashed %d bytes; a blob of the wrong size needs no hashing", r.BytesHashed)
	}
}

func TestSnapshotsOfResolvesTagsAndDigests(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := snapshotOf(c, t, "org/a", map[string][]byte{"f": []byte("x")})
	snapshotOf(c, t, "org/b", map[string][]byte{"f": []byte("y")})
	for _, tc := range []struct{ tag, digest string }{{"v1", ""}, {"", s.Manifest}} {
		got, err := c.SnapshotsOf("reg.test", "org/a", tc.tag, tc.digest)
		if err != nil || len(got) != 1 || got[0].Manifest != s.Manifest {
			t.Errorf("SnapshotsOf(%q, %q) = %v, %v", tc.tag, tc.digest, got, err)
		}
	}
	if got, err := c.SnapshotsOf("reg.test", "org/a", "v2", ""); err != nil || len(got) != 0 {
		t.Errorf("an unknown tag: %v, %v", got, err)
	}
}

func TestCheckStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := snapshotOf(c, t, "m", map[string][]byte{"f": []byte("data")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Check(ctx, []*Snapshot{s}, CheckOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled check: %v", err)
	}
}

// countingProgress records what Check reports.
type countingProgress struct {
	mu                               sync.Mutex
	totalBytes, totalBlobs, bytes, n int64
}

func (p *countingProgress) AddTotal(bytes, blobs int64) {
	p.mu.Lock()
	p.totalBytes, p.totalBlobs = p.totalBytes+bytes, p.totalBlobs+blobs
	p.mu.Unlock()
}

func (p *countingProgress) AddBytes(n int64) { p.mu.Lock(); p.bytes += n; p.mu.Unlock() }
func (p *countingProgress) BlobDone()        { p.mu.Lock(); p.n++; p.mu.Unlock() }

func TestCheckReportsItsProgress(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3<<20+5) // several reads
	s := snapshotOf(c, t, "org/model", map[string][]byte{"a.bin": big, "b.bin": []byte("small")})
	var p countingProgress
	r, err := c.Check(context.Background(), []*Snapshot{s}, CheckOptions{Progress: &p})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len(big) + len("small"))
	if p.totalBytes != want || p.totalBlobs != 2 || p.bytes != want || p.n != 2 || r.BytesHashed != want {
		t.Errorf("progress %+v, hashed %d; want %d bytes and 2 blobs announced and done", &p, r.BytesHashed, want)
	}
}
