package oci

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oci-client/liboci/abi"
	"github.com/oci-client/liboci/internal/events"
	"github.com/oci-client/liboci/internal/logs"
)

// What the tuner does is told with the rate that decided it.
func TestTunerChangesAreLogged(t *testing.T) {
	t.Parallel()
	r := logs.NewRecorder(slog.LevelDebug, nil)
	sink := events.NewSink(nil)
	ctx := events.With(logs.With(context.Background(), r.Logger()), sink)
	log := logs.From(ctx, "oci")
	tu := newTuner(4, 16)
	at, bytes := time.Unix(0, 0), int64(0)
	for range 60 {
		at = at.Add(TuneTick)
		bytes += int64(200e6 * TuneTick.Seconds()) // the total limits: the doubling does not pay
		logTune(ctx, log, tu, tu.observe(at, bytes))
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
	// The same changes, as events.
	evs, _ := sink.Drain()
	var changes []abi.ConnectionsChanged
	for _, e := range evs {
		if e.ConnectionsChanged != nil {
			changes = append(changes, *e.ConnectionsChanged)
		}
	}
	wantChanges := []abi.ConnectionsChanged{
		{Before: 4, After: 8, Why: "slow_connections", RateBps: 200e6},
		{Before: 8, After: 4, Why: "no_gain", RateBps: 200e6},
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("events %+v, want %+v", changes, wantChanges)
	}
}
