package oci

import "time"

// The tuner finds out whether a registry rewards more connections. Behind
// a CDN or a WAN each connection is held to some rate (tens of MB/s), and
// a model pulls several times faster over 16 streams than over 4; near the
// registry, or where the CPU is what limits (hashing, copies), more streams
// only cost: each blob fetched in ranged chunks costs a request per chunk
// and memory for the chunks that arrive ahead (a 2 GiB pull over loopback
// on two vCPUs took 19 % longer with 8 connections than with 4). No fixed
// number is right for both, so a pull starts with its budget and measures
// the rate; if each connection brings less than TuneSlow, it doubles the
// budget and keeps the doubling only if the rate rose by TuneGain, and so
// on up to TuneMax times the budget. The first doubling that does not pay
// is taken back and tuning stops.
const (
	TuneTick    = 100 * time.Millisecond
	tuneWarm    = 3 // ticks before the first measurement: connections open, TCP ramps up
	tuneMeasure = 3 // ticks a rate is measured over
	tuneSettle  = 2 // ticks after a change before measuring again: new connections ramp up
	// TuneSlow is the rate per connection below which more connections
	// are tried. Faster connections come from a registry near enough that
	// the pull is bound by what this machine hashes and writes (a core
	// hashes about 1 GB/s), where more streams cannot help and the probe
	// costs: over loopback on two vCPUs each of 4 connections brought
	// 145-185 MB/s, and a probe there, taken back, cost a lone 2 GiB blob
	// 0.5 s. Behind a registry holding each stream to 50 MB/s they bring
	// 50 (one stream each) to 80 MB/s (a chunked one asks ahead: two).
	TuneSlow = 100e6
	// TuneGain is the rate rise that keeps a doubling: above the ±10-20 %
	// a rate moves from one measurement to the next on a busy machine,
	// below the ~2x a doubling brings where each connection is held to a rate.
	TuneGain = 1.25
	// TuneMax is how far tuning may take a call's budget: 4 x connections.
	TuneMax = 4
)

type tunePhase int

const (
	tuneWarming tunePhase = iota
	tuneBase
	tuneSettling
	tuneProbe
	tuneDone
)

// tuner is the decision, fed the call's received bytes once a tick; it
// neither sleeps nor touches the budget, so tests drive it with made-up
// clocks and rates.
type tuner struct {
	cur, max int
	phase    tunePhase
	ticks    int
	base     float64 // bytes/s before the doubling being tried
	rate     float64 // bytes/s of the last measurement, for the logs
	step     int
	mark     int64
	markAt   time.Time
}

func newTuner(start, most int) *tuner {
	t := &tuner{cur: start, max: most}
	if most <= start {
		t.phase = tuneDone
	}
	return t
}

// observe takes the bytes received so far at time at and returns how
// many connections to add (< 0: to take back).
func (t *tuner) observe(at time.Time, bytes int64) int {
	t.ticks++
	switch t.phase {
	case tuneWarming:
		if t.ticks >= tuneWarm {
			t.measure(at, bytes, tuneBase)
		}
		return 0
	case tuneSettling:
		if t.ticks >= tuneSettle {
			t.measure(at, bytes, tuneProbe)
		}
		return 0
	case tuneBase, tuneProbe:
		if t.ticks < tuneMeasure {
			return 0
		}
		rate := float64(bytes-t.mark) / at.Sub(t.markAt).Seconds()
		t.rate = rate
		if t.phase == tuneProbe && rate < t.base*TuneGain {
			t.phase, t.cur = tuneDone, t.cur-t.step
			return -t.step
		}
		t.base = rate
		if t.cur >= t.max || rate/float64(t.cur) >= TuneSlow {
			t.phase = tuneDone
			return 0
		}
		t.step = min(t.cur, t.max-t.cur)
		t.cur += t.step
		t.phase, t.ticks = tuneSettling, 0
		return t.step
	}
	return 0
}

// measure starts measuring the rate from here, in phase p.
func (t *tuner) measure(at time.Time, bytes int64, p tunePhase) {
	t.mark, t.markAt, t.ticks, t.phase = bytes, at, 0, p
}

// restart discards the rate being measured because a request waits, or
// waited, as the registry asked (429, Retry-After): bytes that stopped for
// that wait say nothing of what connections bring, and a doubling decided on
// them would only ask more of a registry that asked for less. Called on every
// tick a wait is under way, the measurement starts once all are over (a
// doubling being tried keeps its base); the connections stay.
func (t *tuner) restart() {
	switch t.phase {
	case tuneBase:
		t.phase = tuneWarming
	case tuneProbe:
		t.phase = tuneSettling
	}
	t.ticks = 0
}
