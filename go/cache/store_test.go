package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenRefusesOptionsThatCannotApply(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.TempDir(), WithLease(-time.Second)); err == nil {
		t.Error("a negative lease was accepted")
	}
	if _, err := Open(""); err == nil {
		t.Error("an empty root was accepted")
	}
	c, err := Open(t.TempDir(), WithLease(0))
	if err != nil {
		t.Fatal(err)
	}
	if c.Locker.lease != DefaultLease {
		t.Errorf("lease 0: %s, want the default %s", c.Locker.lease, DefaultLease)
	}
}

func TestPresentServesTrustedBlobsAndDropsWrongOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("weights")
	d := digestOf(data)
	if ok, err := c.Present(ctx, d, 0); err != nil || ok {
		t.Fatalf("empty cache: %v %v", ok, err)
	}
	if _, err := c.Present(ctx, "sha256:../../etc", 0); err == nil {
		t.Error("a bad digest was accepted")
	}

	// Committed: trusted, served without a read.
	putBlob(t, c, data)
	if ok, err := c.Present(ctx, d, int64(len(data))); err != nil || !ok {
		t.Fatalf("trusted blob: %v %v", ok, err)
	}
	// The wrong size is removed, whatever the state says.
	if ok, _ := c.Present(ctx, d, 99); ok || c.Has(d) {
		t.Error("a blob of the wrong size was served or kept")
	}

	// No state: re-hashed; a good one is made durable, a bad one removed.
	p := c.BlobPath(d)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Present(ctx, d, 0); err != nil || !ok {
		t.Fatalf("unverified good blob: %v %v", ok, err)
	}
	if TrustOf(p) != Durable {
		t.Error("a re-hashed blob was not made durable")
	}
	RemoveBlob(p)
	if err := os.WriteFile(p, []byte("wrong!!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Present(ctx, d, 0); ok || c.Has(d) {
		t.Error("an unverified wrong blob was served or kept")
	}
}

func TestRehashMovesAWrongTrustedBlobAside(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := putBlob(t, c, []byte("weights"))
	if ok, err := c.Rehash(ctx, d, 0, false); err != nil || !ok {
		t.Fatalf("good blob: %v %v", ok, err)
	}
	flipByte(t, c.BlobPath(d))
	if ok, _ := c.Present(ctx, d, 0); !ok {
		t.Fatal("Present re-hashed a blob its state trusts")
	}
	if ok, err := c.Rehash(ctx, d, 0, false); err != nil || ok {
		t.Fatalf("flipped blob: %v %v", ok, err)
	}
	if c.Has(d) {
		t.Error("the wrong blob is still in blobs/")
	}
	moved, _ := filepath.Glob(filepath.Join(c.Root, QuarantineDir, "*"))
	if len(moved) != 1 {
		t.Errorf("quarantine holds %v, want the one blob", moved)
	}
}

func TestCommitAndAdoptFollowTheDurabilityPolicy(t *testing.T) {
	t.Parallel()
	for _, sync := range []bool{false, true} {
		c, err := Open(t.TempDir(), WithSync(sync))
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("config")
		d := digestOf(data)
		f, err := c.Staging(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := c.Adopt(f.Name(), d); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
			t.Error("the staged file is still there")
		}
		got := TrustOf(c.BlobPath(d))
		want := ThisBoot
		if sync || BootID() == "" {
			want = Durable
		}
		if got != want {
			t.Errorf("sync %v: trust %v, want %v", sync, got, want)
		}
		if !c.Trusted(d) {
			t.Error("an adopted blob is not trusted")
		}
	}
}

func TestPruneDropsPushDigestsOfGoneOrChangedFiles(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := c.PushDigests()
	remember := func(name, content string) FileDigest {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		e := Identity(p, fi)
		e.Digest, e.RecordedNS = digestOf([]byte(content)), e.MtimeNS+int64(RacyWindow)
		m.Put(e)
		if _, trusted := m.Lookup(e); !trusted {
			t.Fatalf("%s: not remembered", name)
		}
		return e
	}
	kept := remember("kept", "a")
	gone := remember("gone", "b")
	changed := remember("changed", "c")
	if err := os.Remove(gone.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed.Path, []byte("longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(c.Root, PushDigestsDir, ".entry-123")
	if err := os.WriteFile(stray, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Too young: a push may be writing them now.
	if _, err := c.Prune(time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, c); n != 4 {
		t.Fatalf("prune with a minimum age removed young entries: %d left, want 4", n)
	}
	if _, err := c.Prune(0); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, c); n != 1 {
		t.Errorf("%d entries left, want the one of the unchanged file", n)
	}
	if _, trusted := m.Lookup(kept); !trusted {
		t.Error("prune dropped the entry of an unchanged file")
	}
}

func entries(t *testing.T, c *Cache) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(c.Root, PushDigestsDir))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
