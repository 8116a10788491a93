package cache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Durability without the wait. A blob enters the cache as soon as it is
// verified, renamed into place without fsync, so a pull costs what the
// network and the hash cost, and the model is still in the page cache for
// the loader that reads it next. Each blob carries a state file:
//
//	{"boot": "<host>/<boot id>", "durable": false}   written at commit
//	{"durable": true}                                after fsync(blob) and fsync(dir)
//
// A blob is served as it is when it is durable, or when it was written
// during this boot of this machine: without a crash since, the page cache
// holds exactly the verified bytes. Anything else (state missing or
// unreadable, written before a reboot or on another machine) is re-hashed
// before it is served, then made durable. The fsyncs run off the critical
// path, after the pull has returned.

type blobState struct {
	Boot    string `json:"boot,omitempty"`
	Durable bool   `json:"durable"`
}

// Trust is what a blob's state file says about its content.
type Trust int

const (
	// Unverified blobs must be re-hashed before they are served.
	Unverified Trust = iota
	// ThisBoot blobs were verified during this boot and are not yet known durable.
	ThisBoot
	// Durable blobs were fsynced after they were verified.
	Durable
)

var (
	bootOnce sync.Once
	bootID   string
)

// BootID names this boot of this machine, "" where it cannot be told
// (then nothing counts as written this boot, and blobs are synced at once).
func BootID() string {
	bootOnce.Do(func() {
		if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
			bootID = strings.TrimSpace(string(b))
		}
	})
	return bootID
}

func thisBoot() string {
	if BootID() == "" {
		return ""
	}
	return hostname() + "/" + BootID()
}

func statePath(blob string) string { return blob + ".state" }

// TrustOf reads the state of the blob file at path.
func TrustOf(path string) Trust {
	data, err := os.ReadFile(statePath(path))
	if err != nil {
		return Unverified
	}
	var s blobState
	if json.Unmarshal(data, &s) != nil {
		return Unverified
	}
	switch {
	case s.Durable:
		return Durable
	case s.Boot != "" && s.Boot == thisBoot():
		return ThisBoot
	}
	return Unverified
}

// MarkVerified records that the blob at path was verified during this
// boot. Without a boot id it makes the blob durable at once instead.
func MarkVerified(path string) error {
	if thisBoot() == "" {
		return MakeDurable(path)
	}
	return writeState(path, blobState{Boot: thisBoot()})
}

// MakeDurable fsyncs the blob and its directory, then records it durable.
func MakeDurable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return writeState(path, blobState{Durable: true})
}

func writeState(path string, s blobState) error {
	data, _ := json.Marshal(s)
	return writeFileAtomic(statePath(path), data)
}

// writeFileAtomic replaces path with data through a unique temporary name,
// so concurrent writers never interleave and readers never see half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp-" + randomSuffix()
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: some file systems refuse directory fsync
		d.Close()
	}
}

// Syncer makes blobs durable in the background, one at a time, each no
// sooner than SyncDelay after it was queued. By then the kernel has written
// most of it back on its own, so the fsync is cheap; and a short-lived
// process is not held up by an fsync in flight. A process that exits
// normally flushes its syncers first (FlushAll, called at exit by the
// Python package), so that what it pulled is not re-hashed after a reboot;
// one that dies leaves its blobs trusted for this boot only, to be synced
// by a later pull.
type Syncer struct {
	mu      sync.Mutex
	queue   []queued
	queued  map[string]bool
	running bool
	hurry   int // callers in Flush: no more delays
	synced  int // blobs found or made durable, for Flush's count
	idle    *sync.Cond
	wake    chan struct{}
	delay   time.Duration
	sync    func(path string) error // MakeDurable; a test slows it down
}

type queued struct {
	path string
	at   time.Time
}

// SyncDelay is how long a verified blob waits before it is fsynced.
const SyncDelay = 10 * time.Second

// Every Syncer of the process, so that FlushAll reaches those that other
// packages keep to themselves.
var (
	syncersMu sync.Mutex
	syncers   []*Syncer
)

// NewSyncer returns an idle Syncer.
func NewSyncer() *Syncer {
	s := &Syncer{queued: map[string]bool{}, wake: make(chan struct{}, 1), delay: SyncDelay, sync: MakeDurable}
	s.idle = sync.NewCond(&s.mu)
	syncersMu.Lock()
	syncers = append(syncers, s)
	syncersMu.Unlock()
	return s
}

// Add queues blob files to be made durable.
func (s *Syncer) Add(paths ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, p := range paths {
		if !s.queued[p] {
			s.queued[p] = true
			s.queue = append(s.queue, queued{p, now})
		}
	}
	if !s.running && len(s.queue) > 0 {
		s.running = true
		go s.run()
	}
}

func (s *Syncer) run() {
	s.mu.Lock()
	for len(s.queue) > 0 {
		q := s.queue[0]
		if wait := time.Until(q.at.Add(s.delay)); wait > 0 && s.hurry == 0 {
			s.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-s.wake:
			}
			s.mu.Lock()
			continue
		}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		durable := false
		switch TrustOf(q.path) {
		case ThisBoot:
			durable = s.sync(q.path) == nil // a blob removed meanwhile is not an error
		case Durable: // another process got there first
			durable = true
		}
		s.mu.Lock()
		if durable {
			s.synced++
		}
		delete(s.queued, q.path)
	}
	s.running = false
	s.idle.Broadcast()
	s.mu.Unlock()
}

// Wait makes every queued blob durable now and returns when it is.
func (s *Syncer) Wait() { s.Flush(context.Background()) }

// Flushed is what a Flush did.
type Flushed struct {
	// Synced blobs were found or made durable during the flush.
	Synced int `json:"synced"`
	// Left blobs were still queued, or being synced, when it returned.
	Left int `json:"left"`
	// ElapsedMS is how long it took, in milliseconds.
	ElapsedMS float64 `json:"elapsed_ms"`
}

// Flush makes the queued blobs durable now, without waiting out their
// delay, and returns when none is left or when ctx is done, whichever comes
// first. An fsync in flight at the deadline goes on; the blobs after it go
// back to waiting for their delay.
func (s *Syncer) Flush(ctx context.Context) Flushed {
	start := time.Now()
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.synced
	s.hurry++
	select {
	case s.wake <- struct{}{}:
	default:
	}
	for s.running && ctx.Err() == nil {
		s.idle.Wait()
	}
	s.hurry--
	return Flushed{Synced: s.synced - before, Left: len(s.queued), ElapsedMS: msSince(start)}
}

// FlushAll flushes every Syncer of the process (see Flush) at once, so
// that one slow disk does not use up the time of the others.
func FlushAll(ctx context.Context) Flushed {
	start := time.Now()
	syncersMu.Lock()
	all := append([]*Syncer(nil), syncers...)
	syncersMu.Unlock()
	results := make([]Flushed, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Go(func() { results[i] = s.Flush(ctx) })
	}
	wg.Wait()
	var total Flushed
	for _, r := range results {
		total.Synced += r.Synced
		total.Left += r.Left
	}
	total.ElapsedMS = msSince(start)
	return total
}

func msSince(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}

// RemoveBlob deletes a blob file and its state.
func RemoveBlob(path string) {
	os.Remove(path)
	os.Remove(statePath(path))
}
