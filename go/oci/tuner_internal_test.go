package oci

import (
	"testing"
	"time"
)

// drive feeds t a tick at a time, the bytes each tick bringing rate(cur)
// bytes/s for the connections it has, and returns what it decided, tick
// by tick (0s left out) and the connections it ended with.
func drive(t *testing.T, tu *tuner, ticks int, rate func(conns int) float64) (steps []int, conns int) {
	t.Helper()
	at, bytes := time.Unix(0, 0), int64(0)
	conns = tu.cur
	for range ticks {
		at = at.Add(TuneTick)
		bytes += int64(rate(conns) * TuneTick.Seconds())
		if n := tu.observe(at, bytes); n != 0 {
			steps = append(steps, n)
			conns += n
		}
	}
	return steps, conns
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Each connection held to 50 MB/s: every doubling pays, up to the most.
func TestTunerDoublesWhileEachConnectionIsHeldToARate(t *testing.T) {
	t.Parallel()
	steps, conns := drive(t, newTuner(4, 16), 40, func(c int) float64 { return float64(c) * 50e6 })
	if !equal(steps, []int{4, 8}) || conns != 16 {
		t.Fatalf("steps %v to %d connections: want +4, +8 to 16", steps, conns)
	}
}

// The first decision waits for the connections to ramp up and a rate
// measured over several ticks.
func TestTunerDecidesOnlyOnAMeasuredRate(t *testing.T) {
	t.Parallel()
	tu := newTuner(4, 16)
	if steps, _ := drive(t, tu, tuneWarm+tuneMeasure-1, func(c int) float64 { return float64(c) * 10e6 }); len(steps) != 0 {
		t.Fatalf("decided %v before a rate was measured", steps)
	}
	if steps, _ := drive(t, tu, 1, func(c int) float64 { return float64(c) * 10e6 }); !equal(steps, []int{4}) {
		t.Fatalf("steps %v once the rate is measured: want +4", steps)
	}
}

// The total is what limits (a shared link, the CPU): the doubling is
// taken back and tuning stops.
func TestTunerTakesBackADoublingThatDoesNotPay(t *testing.T) {
	t.Parallel()
	tu := newTuner(4, 16)
	steps, conns := drive(t, tu, 60, func(int) float64 { return 200e6 })
	if !equal(steps, []int{4, -4}) || conns != 4 || tu.phase != tuneDone {
		t.Fatalf("steps %v to %d connections: want +4, then -4 back to 4, and done", steps, conns)
	}
}

// A gain below TuneGain does not keep a doubling either.
func TestTunerKeepsOnlyAClearGain(t *testing.T) {
	t.Parallel()
	rate := func(c int) float64 {
		if c > 4 {
			return 200e6 * (TuneGain - 0.1)
		}
		return 200e6
	}
	if steps, conns := drive(t, newTuner(4, 16), 60, rate); !equal(steps, []int{4, -4}) || conns != 4 {
		t.Fatalf("steps %v to %d connections: want +4, -4", steps, conns)
	}
}

// Connections each faster than TuneSlow: the pull is near the registry
// and more streams would only cost, so none are tried.
func TestTunerLeavesFastConnectionsAlone(t *testing.T) {
	t.Parallel()
	tu := newTuner(4, 16)
	if steps, _ := drive(t, tu, 60, func(c int) float64 { return float64(c) * TuneSlow * 1.5 }); len(steps) != 0 || tu.phase != tuneDone {
		t.Fatalf("steps %v with %g MB/s per connection: want none", steps, TuneSlow*1.5/1e6)
	}
}

// A shared limit met part way: the doublings that paid are kept, the one
// that did not is taken back.
func TestTunerKeepsWhatPaidBeforeTheLimit(t *testing.T) {
	t.Parallel()
	rate := func(c int) float64 { return float64(min(c, 8)) * 60e6 }
	if steps, conns := drive(t, newTuner(2, 64), 80, rate); !equal(steps, []int{2, 4, 8, -8}) || conns != 8 {
		t.Fatalf("steps %v to %d connections: want +2, +4, +8, -8 to 8", steps, conns)
	}
}

// Doubling stops once each connection brings TuneSlow or more, and never
// passes the most.
func TestTunerStopsWhereConnectionsGetFastOrAtTheMost(t *testing.T) {
	t.Parallel()
	rate := func(c int) float64 {
		if c <= 2 {
			return float64(c) * 50e6
		}
		return float64(c) * TuneSlow * 1.5
	}
	if steps, conns := drive(t, newTuner(2, 64), 80, rate); !equal(steps, []int{2}) || conns != 4 {
		t.Fatalf("steps %v to %d connections: want +2 to 4, then no more", steps, conns)
	}
	steps, conns := drive(t, newTuner(3, 5), 60, func(c int) float64 { return float64(c) * 10e6 })
	if !equal(steps, []int{2}) || conns != 5 {
		t.Fatalf("steps %v to %d connections: want +2 to the most, 5", steps, conns)
	}
}

func TestTunerWithNoRoomDoesNothing(t *testing.T) {
	t.Parallel()
	if tu := newTuner(16, 16); tu.phase != tuneDone {
		t.Fatal("a tuner already at the most is not done")
	}
}

// A registry that asks to wait makes the tuner measure again: no decision
// on a rate that included the wait, a doubling being tried kept, and
// tuning goes on afterwards.
func TestTunerMeasuresAgainWhenTheRegistryAsksToWait(t *testing.T) {
	t.Parallel()
	tu := newTuner(4, 16)
	at, bytes := time.Unix(0, 0), int64(0)
	step := func(rate float64) int {
		at = at.Add(TuneTick)
		bytes += int64(rate * TuneTick.Seconds())
		return tu.observe(at, bytes)
	}
	for range tuneWarm + tuneMeasure - 1 {
		step(4 * 150e6) // fast: one tick from deciding there is nothing to gain
	}
	tu.restart() // a Retry-After: the next ticks are slow because of the wait
	for range tuneWarm + tuneMeasure - 1 {
		if n := step(1e6); n != 0 {
			t.Fatalf("decided %+d on a rate that included the wait", n)
		}
	}
	if n := step(4 * 50e6); n != 4 || tu.cur != 8 {
		t.Fatalf("after the wait, slow connections: %+d to %d, want +4 to 8", n, tu.cur)
	}
	tu.restart() // during the probe: its base stays, its measurement starts again
	if tu.phase != tuneSettling || tu.cur != 8 {
		t.Fatalf("phase %v, %d connections", tu.phase, tu.cur)
	}
}
