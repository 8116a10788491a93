package cache

import (
	"context"
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

// slowSyncer is a Syncer with three blobs queued whose second fsync blocks
// until release is closed.
func slowSyncer(t *testing.T) (s *Syncer, paths []string, release chan struct{}) {
	t.Helper()
	if BootID() == "" {
		t.Skip("no boot id: blobs are durable when verified, nothing is queued")
	}
	s = NewSyncer()
	s.delay = time.Hour
	release = make(chan struct{})
	for range 3 {
		p := blobFile(t)
		if err := MarkVerified(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	s.sync = func(p string) error {
		if p == paths[1] {
			<-release
		}
		return MakeDurable(p)
	}
	s.Add(paths...)
	return s, paths, release
}

func TestFlushStopsAtItsDeadlineAndSaysWhatIsLeft(t *testing.T) {
	t.Parallel()
	s, paths, release := slowSyncer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := s.Flush(ctx)
	if got.Synced != 1 || got.Left != 2 {
		t.Errorf("Flush at its deadline: synced %d, left %d; want 1 and 2 (one fsync stuck)", got.Synced, got.Left)
	}
	if got.ElapsedMS < 190 || got.ElapsedMS > 5000 { // the deadline was set just before Flush began timing
		t.Errorf("Flush with a 200 ms deadline took %.1f ms", got.ElapsedMS)
	}
	if TrustOf(paths[0]) != Durable || TrustOf(paths[2]) != ThisBoot {
		t.Errorf("after the deadline: %v, %v; want Durable, ThisBoot", TrustOf(paths[0]), TrustOf(paths[2]))
	}
	close(release)
	time.Sleep(100 * time.Millisecond)
	if TrustOf(paths[2]) != ThisBoot {
		t.Error("the flush's hurry outlived its deadline: the last blob was synced before its delay")
	}
	// The stuck fsync has finished meanwhile; the last blob is this one's.
	if got := s.Flush(context.Background()); got.Synced != 1 || got.Left != 0 {
		t.Errorf("unbounded Flush: synced %d, left %d; want 1 and 0", got.Synced, got.Left)
	}
	for _, p := range paths {
		if TrustOf(p) != Durable {
			t.Errorf("%s: %v after the unbounded Flush", p, TrustOf(p))
		}
	}
	if got := s.Flush(context.Background()); got != (Flushed{ElapsedMS: got.ElapsedMS}) || got.ElapsedMS > 100 {
		t.Errorf("Flush with nothing queued: %+v, want zeros at once", got)
	}
}

// Not parallel: FlushAll reaches the syncers of every test running beside it.
func TestFlushAllReachesEverySyncerOfTheProcess(t *testing.T) {
	_, paths, release := slowSyncer(t)
	other := NewSyncer()
	other.delay = time.Hour
	p := blobFile(t)
	if err := MarkVerified(p); err != nil {
		t.Fatal(err)
	}
	other.Add(p)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := FlushAll(ctx)
	if got.Synced != 2 || got.Left != 2 {
		t.Errorf("FlushAll at its deadline: synced %d, left %d; want 2 and 2", got.Synced, got.Left)
	}
	if TrustOf(p) != Durable || TrustOf(paths[0]) != Durable {
		t.Error("FlushAll left a blob it could sync")
	}
	close(release)
	if got := FlushAll(context.Background()); got.Synced < 1 || got.Left != 0 {
		t.Errorf("unbounded FlushAll: synced %d, left %d; want at least 1 and 0", got.Synced, got.Left)
	}
	for _, p := range paths {
		if TrustOf(p) != Durable {
			t.Errorf("%s: %v after the unbounded FlushAll", p, TrustOf(p))
		}
	}
}
