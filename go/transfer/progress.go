package transfer

import (
	"context"
	"sync/atomic"
)

// Progress counts bytes and blobs of one operation. Readers poll it (a
// few times a second) instead of being called per read: a call into Python
// for every 256 KiB would cost more than the copy.
type Progress struct {
	bytesDone  atomic.Int64
	bytesTotal atomic.Int64
	blobsDone  atomic.Int64
	blobsTotal atomic.Int64
}

// Snapshot is a consistent-enough view of a Progress.
type Snapshot struct {
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
	BlobsDone  int64 `json:"blobs_done"`
	BlobsTotal int64 `json:"blobs_total"`
}

// Snapshot reads the counters.
func (p *Progress) Snapshot() Snapshot {
	if p == nil {
		return Snapshot{}
	}
	return Snapshot{
		BytesDone:  p.bytesDone.Load(),
		BytesTotal: p.bytesTotal.Load(),
		BlobsDone:  p.blobsDone.Load(),
		BlobsTotal: p.blobsTotal.Load(),
	}
}

// AddBytes records n bytes moved (negative when a restart discards data).
func (p *Progress) AddBytes(n int64) {
	if p != nil {
		p.bytesDone.Add(n)
	}
}

// AddTotal announces n more bytes and blobs to move.
func (p *Progress) AddTotal(bytes, blobs int64) {
	if p != nil {
		p.bytesTotal.Add(bytes)
		p.blobsTotal.Add(blobs)
	}
}

// BlobDone records one finished blob.
func (p *Progress) BlobDone() {
	if p != nil {
		p.blobsDone.Add(1)
	}
}

type progressKey struct{}

// WithProgress returns ctx carrying p.
func WithProgress(ctx context.Context, p *Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// ProgressFrom returns the Progress in ctx, or nil (all methods accept nil).
func ProgressFrom(ctx context.Context) *Progress {
	p, _ := ctx.Value(progressKey{}).(*Progress)
	return p
}
