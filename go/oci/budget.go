package oci

import "sync"

// budget is the connections one PullBlobs call shares among its blobs.
// Each blob starts with its share; those running may borrow what is free,
// up to perBlob, but while blobs wait to start one share stays free for
// the next, so borrowing never delays one. The tuner may grow the budget
// (connections that pay go to the running blobs at once) and shrink it
// again: free then goes negative, and the debt is paid by connections
// coming back and by borrowed ones retiring as their spans end.
type budget struct {
	mu      sync.Mutex
	free    int
	perBlob int
	share   int // what each blob starts with
	slots   int // blobs that run at once
	waiting int // blobs not started yet
	running int
}

// newBudget is `slots` blobs at once, `share` connections each, of `blobs`.
func newBudget(share, slots, perBlob, blobs int) *budget {
	return &budget{free: share * slots, perBlob: perBlob, share: share, slots: slots, waiting: blobs}
}

// start takes a starting blob's share.
func (b *budget) start() {
	b.mu.Lock()
	b.waiting--
	b.running++
	b.free -= b.share
	b.mu.Unlock()
}

// finish gives back a finished blob's share.
func (b *budget) finish() {
	b.mu.Lock()
	b.running--
	b.free += b.share
	b.mu.Unlock()
}

// Borrow implements transfer.Lender. A blob gets at most as many as it
// has per call, so blobs asking at once share what is free; the shares of
// blobs about to start (a slot free, blobs waiting) are not lent.
func (b *budget) Borrow(have int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	avail := b.free - min(b.waiting, b.slots-b.running)*b.share
	n := max(0, min(avail, b.perBlob-have, max(have, 1)))
	b.free -= n
	return n
}

// Return implements transfer.Lender.
func (b *budget) Return(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
}

// Retire implements transfer.Lender: a borrowed connection closes while
// the budget is short.
func (b *budget) Retire() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free >= 0 {
		return false
	}
	b.free++
	return true
}

// resize adds n connections to the budget (n < 0 takes them back), with
// the most one blob may hold moved by as many.
func (b *budget) resize(n int) {
	b.mu.Lock()
	b.free += n
	b.perBlob += n
	b.mu.Unlock()
}
