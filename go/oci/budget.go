package oci

import "sync"

// budget is the connections one PullBlobs call shares among its blobs.
// Each blob starts with its share; once every blob has started, those
// still running may borrow what finished ones gave back, up to perBlob.
// Blobs yet to start come first, so borrowing never delays one.
type budget struct {
	mu      sync.Mutex
	free    int
	perBlob int
	waiting int // blobs not started yet
}

func newBudget(total, perBlob, blobs int) *budget {
	return &budget{free: total, perBlob: perBlob, waiting: blobs}
}

// start takes a starting blob's share.
func (b *budget) start(share int) {
	b.mu.Lock()
	b.waiting--
	b.free -= share
	b.mu.Unlock()
}

// Borrow implements transfer.Lender.
func (b *budget) Borrow(have int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiting > 0 {
		return 0
	}
	n := max(0, min(b.free, b.perBlob-have))
	b.free -= n
	return n
}

// Return implements transfer.Lender.
func (b *budget) Return(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
}
