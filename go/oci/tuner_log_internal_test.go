package oci

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/internal/logs"
)

// What the tuner does is told with the rate that decided it.
func TestTunerChangesAreLogged(t *testing.T) {
	t.Parallel()
	r := logs.NewRecorder(slog.LevelDebug, nil)
	log := logs.From(logs.With(context.Background(), r.Logger()), "oci")
	tu := newTuner(4, 16)
	at, bytes := time.Unix(0, 0), int64(0)
	for range 60 {
		at = at.Add(TuneTick)
		bytes += int64(200e6 * TuneTick.Seconds()) // the total limits: the doubling does not pay
		logTune(log, tu, tu.observe(at, bytes))
		if tu.phase == tuneDone {
			break
		}
	}
	var got []string
	for _, e := range r.Drain() {
		line := e.Logger + ": " + e.Msg
		for _, a := range e.Attrs {
			line += " " + a.Key + "=" + slog.AnyValue(a.Value).String()
		}
		got = append(got, line)
	}
	want := []string{
		"oci: adding connections: each brings little added=4 connections=8 rate=200.0 MB/s",
		"oci: taking connections back: they did not pay removed=4 connections=4 rate=200.0 MB/s before=200.0 MB/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
