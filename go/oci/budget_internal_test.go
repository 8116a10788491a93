package oci

import "testing"

func TestBudgetLendsOnlyOnceEveryBlobHasStarted(t *testing.T) {
	t.Parallel()
	b := newBudget(4, 4, 5) // 5 blobs, 4 at a time, 1 connection each
	for range 4 {
		b.start(1)
	}
	b.Return(1) // the first blob is done; the fifth has yet to start
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d while a blob waits to start", n)
	}
	b.start(1)
	if n := b.Borrow(1); n != 0 {
		t.Fatalf("lent %d with none free", n)
	}
	b.Return(1)
	b.Return(1)
	b.Return(1) // three blobs done: three connections free
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
