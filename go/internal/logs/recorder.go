package logs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/redact"
)

// MaxRecords bounds the records a Recorder keeps between two drains; when
// more arrive the oldest go (the latest are the ones that explain how a call
// ended) and the next drain says how many went.
const MaxRecords = 1000

// ParseLevel reads a request's "log_level": "" (no logs), "debug", "info",
// "warning" (or "warn"), "error".
func ParseLevel(s string) (level slog.Level, on bool, err error) {
	switch strings.ToLower(s) {
	case "":
		return 0, false, nil
	case "debug":
		return slog.LevelDebug, true, nil
	case "info":
		return slog.LevelInfo, true, nil
	case "warning", "warn":
		return slog.LevelWarn, true, nil
	case "error":
		return slog.LevelError, true, nil
	}
	return 0, false, fmt.Errorf("log_level must be one of debug, info, warning, error; got %q", s)
}

// Entry is one record as it leaves the library: the wire type, abi.LogRecord.
type Entry = abi.LogRecord

// Attr is one attribute; its value is a string, number or bool.
type Attr = abi.LogAttr

// Attrs marshal as one JSON object in the order they were logged.
type Attrs = abi.LogAttrs

// Recorder keeps one call's records until they are drained. Secrets are
// masked on the way out, not on the way in, so that a secret the call
// learns after a record was made (a token fetched later) is masked in it too.
type Recorder struct {
	min     slog.Level
	secrets *redact.Set
	max     int

	mu      sync.Mutex
	entries []Entry
	dropped int
}

// NewRecorder keeps records at min and above, masking secrets' values.
func NewRecorder(min slog.Level, secrets *redact.Set) *Recorder {
	return &Recorder{min: min, secrets: secrets, max: MaxRecords}
}

// Logger returns a logger whose records r keeps.
func (r *Recorder) Logger() *slog.Logger { return slog.New(&handler{r: r}) }

// Drain returns the records kept since the last drain, masked, oldest
// first, and forgets them. A nil Recorder has none.
func (r *Recorder) Drain() []Entry {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	out, dropped := r.entries, r.dropped
	r.entries, r.dropped = nil, 0
	r.mu.Unlock()
	if dropped > 0 {
		out = append([]Entry{{
			Time: float64(time.Now().UnixNano()) / 1e9, Level: "WARNING",
			Msg: fmt.Sprintf("%d log records dropped: more than %d arrived between two reads", dropped, r.max),
		}}, out...)
	}
	for i := range out {
		e := &out[i]
		e.Msg = r.secrets.Scrub(e.Msg)
		for j := range e.Attrs {
			if s, ok := e.Attrs[j].Value.(string); ok {
				e.Attrs[j].Value = r.secrets.Scrub(s)
			}
		}
	}
	return out
}

func (r *Recorder) add(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) >= r.max {
		r.entries = r.entries[1:]
		r.dropped++
	}
	r.entries = append(r.entries, e)
}

// LevelName is Python's name for l.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	}
	return "ERROR"
}

// handler is the slog.Handler of a Recorder. Attributes are turned into
// plain values when logged: the record must not hold on to (or format
// late) values the caller goes on changing.
type handler struct {
	r      *Recorder
	area   string
	attrs  Attrs
	prefix string // groups, "a.b."
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.r.min }

func (h *handler) Handle(_ context.Context, rec slog.Record) error {
	e := Entry{
		Time:   float64(rec.Time.UnixNano()) / 1e9,
		Level:  LevelName(rec.Level),
		Logger: h.area,
		Msg:    rec.Message,
		Attrs:  append(Attrs(nil), h.attrs...),
	}
	rec.Attrs(func(a slog.Attr) bool {
		e.Logger, e.Attrs = flatten(e.Logger, e.Attrs, h.prefix, a)
		return true
	})
	h.r.add(e)
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(Attrs(nil), h.attrs...)
	for _, a := range as {
		c.area, c.attrs = flatten(c.area, c.attrs, c.prefix, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}

// flatten adds a to attrs (groups as dotted keys); the area attribute
// names the logger instead.
func flatten(area string, attrs Attrs, prefix string, a slog.Attr) (string, Attrs) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return area, attrs
	}
	if a.Key == AreaKey && prefix == "" {
		return a.Value.String(), attrs
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			area, attrs = flatten(area, attrs, p, g)
		}
		return area, attrs
	}
	return area, append(attrs, Attr{Key: prefix + a.Key, Value: plain(a.Value)})
}

// plain is v as a JSON string, number or bool.
func plain(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	// Errors and anything else by their text (fmt.Sprint).
	return v.String()
}
