package cache

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func writeOwner(t *testing.T, path string, o leaseOwner) {
	t.Helper()
	data, _ := json.Marshal(o)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestLeaseIsExclusiveUntilReleased(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.lock")
	a, ok, err := NewLocker(0).TryLock(context.Background(), path)
	if err != nil || !ok {
		t.Fatalf("first TryLock: %v %v", ok, err)
	}
	if _, ok, err := NewLocker(0).TryLock(context.Background(), path); err != nil || ok {
		t.Fatalf("second TryLock while held: %v %v", ok, err)
	}
	a.Release()
	b, ok, err := NewLocker(0).TryLock(context.Background(), path)
	if err != nil || !ok {
		t.Fatalf("TryLock after release: %v %v", ok, err)
	}
	b.Release()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("lock file left after release: %v", err)
	}
}

func TestLeaseOfADeadProcessIsBrokenAtOnce(t *testing.T) {
	t.Parallel()
	if BootID() == "" {
		t.Skip("no boot id on this system (Linux always has one)")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	writeOwner(t, path, leaseOwner{Host: hostname(), Boot: BootID(), PID: deadPID(t), Token: "dead"})
	l, ok, err := NewLocker(time.Hour).TryLock(context.Background(), path)
	if err != nil || !ok {
		t.Fatalf("TryLock over a dead holder: %v %v", ok, err)
	}
	l.Release()
}

func TestLeaseWithoutHeartbeatIsBrokenAfterTheLease(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.lock")
	// Another machine's holder: its pid means nothing here.
	writeOwner(t, path, leaseOwner{Host: "elsewhere", Boot: "b", PID: 1, Token: "far"})
	k := NewLocker(300 * time.Millisecond)
	start := time.Now()
	for {
		l, ok, err := k.TryLock(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			l.Release()
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a lease without heartbeat was never broken")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("broken after %v, before the lease ran out", waited)
	}
}

func TestHeartbeatKeepsALeaseAlive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.lock")
	holder, ok, err := NewLocker(300*time.Millisecond).TryLock(context.Background(), path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer holder.Release()
	// The holder is alive, so only the lease rule could break it, and the
	// heartbeat keeps changing what a waiter sees.
	k := NewLocker(300 * time.Millisecond)
	deadline := time.Now().Add(1200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, ok, err := k.TryLock(context.Background(), path); err != nil || ok {
			t.Fatalf("took a lease whose holder is alive and beating: %v %v", ok, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	select {
	case <-holder.Lost():
		t.Fatal("the holder lost its lease")
	default:
	}
}

func TestHolderNoticesItsLeaseWasBroken(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.lock")
	l, ok, err := NewLocker(100*time.Millisecond).TryLock(context.Background(), path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer l.Release()
	writeOwner(t, path, leaseOwner{Host: "elsewhere", Token: "thief"})
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost was not closed after another process took the lease")
	}
	l.Release()
	if o, err := readOwner(path); err != nil || o.Token != "thief" {
		t.Errorf("Release removed someone else's lease: %+v %v", o, err)
	}
}

func TestBreakingPutsBackALeaseTakenMeanwhile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.lock")
	// Judged stale with token "old", but a racing waiter already replaced it.
	writeOwner(t, path, leaseOwner{Host: "elsewhere", Token: "new"})
	NewLocker(0).breakLease(path, "old")
	if o, err := readOwner(path); err != nil || o.Token != "new" {
		t.Fatalf("the fresh lease is gone: %+v %v", o, err)
	}
	NewLocker(0).breakLease(path, "new")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the stale lease is still there: %v", err)
	}
	if left, _ := filepath.Glob(path + ".stale-*"); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
