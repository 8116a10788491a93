package extract

import (
	"math"
	"testing"
)

func TestLimitsResolved(t *testing.T) {
	t.Parallel()
	got := Limits{MaxEntries: -1}.resolved()
	want := Limits{MaxEntries: DefaultMaxEntries, MaxEntrySize: DefaultMaxEntrySize, MaxTotalSize: DefaultMaxTotalSize, MaxRatio: DefaultMaxRatio}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := (Limits{MaxRatio: -1}).resolved().MaxRatio; got != -1 {
		t.Errorf("a negative MaxRatio became %d", got)
	}
}

func TestUnpackBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lim  Limits
		c    Compression
		want int64
	}{
		{Limits{CompressedSize: 1 << 20}, Gzip, 1000<<20 + RatioSlack},
		{Limits{CompressedSize: 1 << 20, MaxRatio: 2}, Zstd, 2<<20 + RatioSlack},
		{Limits{CompressedSize: 1 << 20}, None, math.MaxInt64},
		{Limits{CompressedSize: 1 << 20, MaxRatio: -1}, Gzip, math.MaxInt64},
		{Limits{}, Gzip, math.MaxInt64},
		{Limits{CompressedSize: math.MaxInt64 / 10}, Gzip, math.MaxInt64}, // would overflow
	} {
		if got := tc.lim.resolved().unpackBudget(tc.c); got != tc.want {
			t.Errorf("%+v %q: budget %d, want %d", tc.lim, tc.c, got, tc.want)
		}
	}
}
