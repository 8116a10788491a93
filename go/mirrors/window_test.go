package mirrors

import (
	"context"
	"testing"
	"time"
)

func TestWindowSharesOneRecordPerPeriod(t *testing.T) {
	now := time.Unix(1000, 0)
	w := NewWindow(30 * time.Second)
	w.now = func() time.Time { return now }
	s := Settings{Mirrors: map[string][]string{}}
	first := callFrom(w.Begin(context.Background(), s))
	if first == nil || pullFrom(w.Begin(context.Background(), s)) == nil {
		t.Fatal("Begin did not mark a pull with a record")
	}
	first.fail(context.Background(), Host{Scheme: "http", Host: "m"}, "r", "down", true)
	now = now.Add(29 * time.Second)
	if c := callFrom(w.Begin(context.Background(), s)); c != first || !c.isFailed(Host{Scheme: "http", Host: "m"}) {
		t.Fatal("a request within the period did not share what the first learnt")
	}
	now = now.Add(time.Second)
	if c := callFrom(w.Begin(context.Background(), s)); c == first || c.isFailed(Host{Scheme: "http", Host: "m"}) {
		t.Fatal("the next period still skips the mirror")
	}
}
