package cache

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/logs"
)

func leaseLogs(t *testing.T) (context.Context, func() string) {
	t.Helper()
	r := logs.NewRecorder(slog.LevelInfo, nil)
	return logs.With(context.Background(), r.Logger()), func() string {
		var b strings.Builder
		for _, e := range r.Drain() {
			b.WriteString(e.Logger + ": " + e.Msg)
			for _, a := range e.Attrs {
				b.WriteString(" " + a.Key + "=")
				b.WriteString(strings.TrimSpace(strings.ReplaceAll(slog.AnyValue(a.Value).String(), "\n", " ")))
			}
			b.WriteString("\n")
		}
		return b.String()
	}
}

func TestBreakingAStaleLeaseIsLogged(t *testing.T) {
	t.Parallel()
	if BootID() == "" {
		t.Skip("no boot id on this system")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	pid := deadPID(t)
	writeOwner(t, path, leaseOwner{Host: hostname(), Boot: BootID(), PID: pid, Token: "dead"})
	ctx, drain := leaseLogs(t)
	l, ok, err := NewLocker(time.Hour).TryLock(ctx, path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	l.Release()
	got := drain()
	if !strings.Contains(got, "cache: breaking a stale lease lease="+path) || !strings.Contains(got, "has exited") {
		t.Errorf("logs:\n%s", got)
	}
}

func TestWaitingForALeaseIsLogged(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.lock")
	k := NewLocker(time.Hour)
	holder, ok, err := k.TryLock(context.Background(), path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	time.AfterFunc(3*WaitPoll, holder.Release)
	ctx, drain := leaseLogs(t)
	l, err := k.Wait(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	got := drain()
	if !strings.Contains(got, "cache: waiting for another process's lease lease="+path) || !strings.Contains(got, "cache: took the lease") {
		t.Errorf("logs:\n%s", got)
	}
}
