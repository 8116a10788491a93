package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
)

// Leases serialize the work on one blob across processes and machines
// without flock, which does nothing on some network file systems (NFS
// without lockd, Lustre mounted without flock). A lease is a file created
// with O_EXCL; its holder touches it every Lease/5. A waiter that sees the
// file unchanged for Lease, by its own monotonic clock (so clock skew
// between machines does not matter), or whose holder is a dead process on
// this machine and boot, breaks it.

// DefaultLease is how long a lease that shows no heartbeat is honoured.
const DefaultLease = 30 * time.Second

type leaseOwner struct {
	Host  string `json:"host"`
	Boot  string `json:"boot"`
	PID   int    `json:"pid"`
	Token string `json:"token"`
}

// Lease is a held lock file.
type Lease struct {
	path  string
	token string
	stop  chan struct{}
	lost  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// Lost is closed when the lease was broken by another process (this
// holder stalled for longer than the lease): stop writing.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops the heartbeat and removes the lock file, if it is still ours.
func (l *Lease) Release() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		if o, err := readOwner(l.path); err == nil && o.Token == l.token {
			os.Remove(l.path)
		}
	})
}

// Locker takes leases and remembers what it saw of others' leases, so
// that it can tell a live holder from a dead one.
type Locker struct {
	lease time.Duration
	mu    sync.Mutex
	seen  map[string]sighting
	now   func() time.Time // monotonic readings; replaced in tests
}

type sighting struct {
	mtime time.Time
	size  int64
	token string
	since time.Time // when this state was first seen
}

// NewLocker returns a Locker whose leases last lease (<= 0: DefaultLease).
func NewLocker(lease time.Duration) *Locker {
	if lease <= 0 {
		lease = DefaultLease
	}
	return &Locker{lease: lease, seen: map[string]sighting{}, now: time.Now}
}

// TryLock takes the lease at path, breaking it first if its holder is
// dead. ok is false while a live holder has it.
func (k *Locker) TryLock(ctx context.Context, path string) (l *Lease, ok bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		l, err := k.create(path)
		if err == nil {
			return l, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		token, why := k.stale(path)
		if why == "" {
			return nil, false, nil
		}
		events.Log(ctx, "cache", "breaking a stale lease", abi.LeaseBroken{Digest: events.DigestInLease(path), Lease: path, Why: why},
			"lease", path, "why", why)
		k.breakLease(path, token)
	}
	return nil, false, nil
}

// WaitPoll is how often Wait looks at a lease another process holds.
const WaitPoll = 100 * time.Millisecond

// Wait takes the lease at path, waiting while a live holder has it, until
// ctx ends (then it returns ctx.Err() itself).
func (k *Locker) Wait(ctx context.Context, path string) (*Lease, error) {
	var since time.Time
	for {
		l, got, err := k.TryLock(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("taking the lease %s: %w", path, err)
		}
		if got {
			if !since.IsZero() {
				logs.From(ctx, "cache").Info("took the lease", "lease", path, "waited", time.Since(since).Round(time.Millisecond))
			}
			return l, nil
		}
		if since.IsZero() {
			since = time.Now()
			LogHeld(ctx, path)
		}
		t := time.NewTimer(WaitPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (k *Locker) create(path string) (*Lease, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	o := leaseOwner{Host: hostname(), Boot: BootID(), PID: os.Getpid(), Token: hex.EncodeToString(tok)}
	data, _ := json.Marshal(o)
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, werr
	}
	l := &Lease{path: path, token: o.Token, stop: make(chan struct{}), lost: make(chan struct{})}
	l.wg.Add(1)
	go l.heartbeat(k.lease / 5)
	return l, nil
}

func (l *Lease) heartbeat(every time.Duration) {
	defer l.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if o, err := readOwner(l.path); err != nil || o.Token != l.token {
			close(l.lost)
			return
		}
		now := time.Now()
		_ = os.Chtimes(l.path, now, now)
	}
}

// LogHeld records that this call waits for the lease at path, and who
// holds it, as far as the lease file says: a log line and a lease_waiting
// event.
func LogHeld(ctx context.Context, path string) {
	if !events.Wanted(ctx) {
		return
	}
	o, _ := readOwner(path)
	events.Log(ctx, "cache", "waiting for another process's lease",
		abi.LeaseWaiting{Digest: events.DigestInLease(path), Lease: path, HolderPID: o.PID, HolderHost: o.Host},
		"lease", path, "holder_pid", o.PID, "holder_host", o.Host)
}

// stale says why the lease at path may be broken ("" while it may not): its
// holder is a process of this boot that no longer exists, or it has not
// changed for a whole lease by this process's clock. It returns the token
// it judged.
func (k *Locker) stale(path string) (string, string) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "" // gone (try again) or unreadable (wait)
	}
	o, oerr := readOwner(path)
	if oerr == nil && o.Host == hostname() && o.Boot != "" && o.Boot == BootID() && !processAlive(o.PID) {
		return o.Token, fmt.Sprintf("its holder, process %d on this machine, has exited", o.PID)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	cur := sighting{mtime: fi.ModTime(), size: fi.Size(), token: o.Token, since: now}
	prev, ok := k.seen[path]
	if !ok || prev.mtime != cur.mtime || prev.size != cur.size || prev.token != cur.token {
		k.seen[path] = cur
		return "", ""
	}
	if now.Sub(prev.since) < k.lease {
		return "", ""
	}
	delete(k.seen, path)
	return prev.token, fmt.Sprintf("no heartbeat for %s", k.lease)
}

// breakLease removes the stale lease with token. It moves the file aside
// first and checks it is still the one judged stale: a waiter racing us
// may already have broken it and taken a new one, which goes back.
func (k *Locker) breakLease(path, token string) {
	aside := path + ".stale-" + randomSuffix()
	if os.Rename(path, aside) != nil {
		return
	}
	if o, _ := readOwner(aside); o.Token != token {
		_ = os.Link(aside, path) // fails if yet another lease exists: that one wins
	}
	os.Remove(aside)
}

func readOwner(path string) (leaseOwner, error) {
	var o leaseOwner
	data, err := os.ReadFile(path)
	if err != nil {
		return o, err
	}
	err = json.Unmarshal(data, &o)
	return o, err
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var (
	hostOnce sync.Once
	host     string
)

func hostname() string {
	hostOnce.Do(func() { host, _ = os.Hostname() })
	return host
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
