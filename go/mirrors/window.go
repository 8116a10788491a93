package mirrors

import (
	"context"
	"sync"
	"time"
)

// Window is one call record shared by the requests of a server that sends
// its clients' requests through mirrors (the built-in registry as a
// pull-through cache), and renewed every period. A server has no "pull"
// to bound what it learns: per request, a dead mirror would be tried and
// logged for every blob; for ever, a mirror that failed once would never
// be tried again and a changed hosts.toml never read. Per period, a
// failed mirror is skipped and logged once, then tried again, and the
// configuration is read afresh.
type Window struct {
	period time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time
	c     *call
}

// NewWindow returns a Window renewed every period.
func NewWindow(period time.Duration) *Window {
	return &Window{period: period, now: time.Now}
}

// Begin marks ctx as a pull with settings s whose record is the current
// period's.
func (w *Window) Begin(ctx context.Context, s Settings) context.Context {
	w.mu.Lock()
	if now := w.now(); w.c == nil || now.Sub(w.start) >= w.period {
		w.c, w.start = newCall(), now
	}
	c := w.c
	w.mu.Unlock()
	ctx = context.WithValue(ctx, callKey{}, c)
	return context.WithValue(ctx, pullKey{}, &pull{settings: s})
}
