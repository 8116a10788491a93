package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func blobFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTrustFollowsTheStateFile(t *testing.T) {
	t.Parallel()
	p := blobFile(t)
	if got := TrustOf(p); got != Unverified {
		t.Errorf("no state: %v, want Unverified", got)
	}
	if err := MarkVerified(p); err != nil {
		t.Fatal(err)
	}
	want := ThisBoot
	if BootID() == "" {
		want = Durable // without a boot id, verified means synced at once
	}
	if got := TrustOf(p); got != want {
		t.Errorf("after MarkVerified: %v, want %v", got, want)
	}
	if err := MakeDurable(p); err != nil {
		t.Fatal(err)
	}
	if got := TrustOf(p); got != Durable {
		t.Errorf("after MakeDurable: %v, want Durable", got)
	}
	for _, state := range []string{`{"boot":"otherhost/otherboot","durable":false}`, `{"boot":""}`, `not json`, ``} {
		if err := os.WriteFile(statePath(p), []byte(state), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := TrustOf(p); got != Unverified {
			t.Errorf("state %q: %v, want Unverified", state, got)
		}
	}
	RemoveBlob(p)
	if _, err := os.Stat(statePath(p)); !os.IsNotExist(err) {
		t.Error("RemoveBlob left the state file")
	}
}

func TestSyncerMakesQueuedBlobsDurable(t *testing.T) {
	t.Parallel()
	s := NewSyncer()
	var paths []string
	for range 3 {
		p := blobFile(t)
		if err := MarkVerified(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	s.Add(paths...)
	s.Add(paths[0]) // queued twice: synced once, no harm
	s.Wait()
	for _, p := range paths {
		if got := TrustOf(p); got != Durable {
			t.Errorf("%s: %v after Wait, want Durable", p, got)
		}
	}
}

func TestSplitDigestRefusesWhatCouldBecomeAPath(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"", "sha256:", "sha256:../../etc", "md5:" + hex64, "sha256:" + hex64[:63], "sha256:" + hex64 + "/x", "SHA256:" + hex64} {
		if _, _, err := SplitDigest(d); err == nil {
			t.Errorf("SplitDigest(%q) accepted", d)
		}
	}
	if _, _, err := SplitDigest("sha256:" + hex64); err != nil {
		t.Error(err)
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestSyncerWaitsBeforeItSyncs(t *testing.T) {
	t.Parallel()
	s := NewSyncer()
	s.delay = time.Hour
	p := blobFile(t)
	if err := MarkVerified(p); err != nil {
		t.Fatal(err)
	}
	s.Add(p)
	time.Sleep(50 * time.Millisecond)
	if BootID() != "" && TrustOf(p) != ThisBoot {
		t.Errorf("synced before its delay: %v", TrustOf(p))
	}
	s.Wait() // hurries it
	if got := TrustOf(p); got != Durable {
		t.Errorf("after Wait: %v, want Durable", got)
	}
}
