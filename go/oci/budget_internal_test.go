package oci

import "testing"

func TestBudgetLendsOnlyOnceEveryBlobHasStarted(t *testing.T) {
	t.Parallel()
	b := newBudget(1, 4, 4, 5) // 5 blobs, 4 at a time, 1 connection each
	for range 4 {
		b.start()
	}
	b.finish() // the first blob is done; the fifth has yet to start
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d while a blob waits to start", n)
	}
	b.start()
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d with none free", n)
	}
	b.finish()
	b.finish()
	b.finish() // three blobs done: three connections free
	if n := b.Borrow(2); n != 2 {
		t.Fatalf("lent %d to a blob with 2 of at most 4, want 2", n)
	}
	if n := b.Borrow(1); n != 1 {
		t.Fatalf("lent %d of the 1 left, want 1", n)
	}
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d beyond the budget", n)
	}
	b.Return(3)
	if n := b.Borrow(4); n != 0 {
		t.Fatalf("lent %d to a blob already at the most one may have", n)
	}
}

// Connections the tuner adds are lent at once, even while blobs wait to
// start (but not a finished blob's share: the next one starts with it),
// and taken back: borrowed ones retire, ones given back pay the debt first.
func TestBudgetGrowsAndShrinks(t *testing.T) {
	t.Parallel()
	b := newBudget(1, 4, 4, 5) // 5 blobs, 4 at a time, 1 connection each
	for range 4 {
		b.start()
	}
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d with none free", n)
	}
	b.resize(4)
	for _, want := range [][2]int{{1, 1}, {2, 2}, {4, 1}, {1, 0}} {
		if n := b.Borrow(want[0]); n != want[1] {
			t.Fatalf("lent %d to a blob with %d after the budget grew by 4: want %d", n, want[0], want[1])
		}
	}
	b.finish() // a blob is done: its share is the fifth one's
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d, the share of the blob about to start", n)
	}
	b.start()
	b.resize(-4) // all 4 added are lent
	for i := range 4 {
		if !b.Retire() {
			t.Fatalf("retire %d of 4 refused", i+1)
		}
	}
	if b.Retire() {
		t.Fatal("a fifth connection retired: the budget is paid")
	}
	b.resize(4)
	b.Borrow(1)
	b.resize(-4) // 1 of 4 lent: 3 taken from what was free, 1 owed
	b.Return(1)  // the lent one comes back and pays it
	if b.Retire() {
		t.Fatal("a connection retired after the debt was paid by one given back")
	}
}
