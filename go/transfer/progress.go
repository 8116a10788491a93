package transfer

import (
	"context"
	"sync"
	"sync/atomic"
)

// Progress counts bytes and blobs of one operation. Readers poll it (a
// few times a second) instead of being called per read: a call into Python
// for every 256 KiB would cost more than the copy.
//
// A Progress may have one child per blob (Blob), whose counts also go to
// the parent, so a reader sees each file as well as the total.
type Progress struct {
	bytesDone  atomic.Int64
	bytesTotal atomic.Int64
	blobsDone  atomic.Int64
	blobsTotal atomic.Int64

	parent   *Progress
	label    string
	mu       sync.Mutex
	children []*Progress
	path     string // where the finished blob is, once it is
	present  bool   // found in place, not downloaded by this operation

	finished chan struct{} // closed (and dropped) when a blob under this one finishes
}

// Blob returns a child counting one blob, named label for readers.
func (p *Progress) Blob(label string) *Progress {
	if p == nil {
		return nil
	}
	c := &Progress{parent: p, label: label}
	p.mu.Lock()
	p.children = append(p.children, c)
	p.mu.Unlock()
	return c
}

// BlobSnapshot is one child's view.
type BlobSnapshot struct {
	Label      string `json:"label"`
	BytesDone  int64  `json:"bytes_done"`
	BytesTotal int64  `json:"bytes_total"`
	Done       bool   `json:"done"`
	// Path is the verified file, once Done: a reader may open it before
	// the operation ends (a loader reads shard 1 while shard 4 downloads).
	Path string `json:"path,omitempty"`
	// Present marks a blob this operation found in place, verified, without
	// downloading it (no bytes: it was cached, or another process fetched it).
	Present bool `json:"present,omitempty"`
}

// Snapshot is a consistent-enough view of a Progress.
type Snapshot struct {
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
	BlobsDone  int64 `json:"blobs_done"`
	BlobsTotal int64 `json:"blobs_total"`
	// Blobs has one entry per child, in the order they were made.
	Blobs []BlobSnapshot `json:"blobs,omitempty"`
}

// Snapshot reads the counters.
func (p *Progress) Snapshot() Snapshot {
	if p == nil {
		return Snapshot{}
	}
	s := Snapshot{
		BytesDone:  p.bytesDone.Load(),
		BytesTotal: p.bytesTotal.Load(),
		BlobsDone:  p.blobsDone.Load(),
		BlobsTotal: p.blobsTotal.Load(),
	}
	p.mu.Lock()
	children := p.children
	p.mu.Unlock()
	for _, c := range children {
		c.mu.Lock()
		path, present := c.path, c.present
		c.mu.Unlock()
		s.Blobs = append(s.Blobs, BlobSnapshot{
			Label: c.label, BytesDone: c.bytesDone.Load(), BytesTotal: c.bytesTotal.Load(),
			Done: c.blobsDone.Load() > 0, Path: path, Present: present,
		})
	}
	return s
}

// BytesDone is the bytes moved so far.
func (p *Progress) BytesDone() int64 {
	if p == nil {
		return 0
	}
	return p.bytesDone.Load()
}

// AddBytes records n bytes moved (negative when a restart discards data).
func (p *Progress) AddBytes(n int64) {
	for ; p != nil; p = p.parent {
		p.bytesDone.Add(n)
	}
}

// AddTotal announces n more bytes and blobs to move.
func (p *Progress) AddTotal(bytes, blobs int64) {
	for ; p != nil; p = p.parent {
		p.bytesTotal.Add(bytes)
		p.blobsTotal.Add(blobs)
	}
}

// BlobAt records one finished blob, verified and in place at path.
func (p *Progress) BlobAt(path string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.path = path
	p.mu.Unlock()
	p.BlobDone()
}

// Found records blob label as verified and in place at path without this
// operation downloading it: in the cache already, or fetched meanwhile by
// another process whose turn it was. It counts as a finished blob of no
// bytes, so a reader waiting for the next verified blob (a loader) takes
// it at once. A label already reported finished is not reported again.
func (p *Progress) Found(label, path string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	for _, c := range p.children {
		if c.label == label && c.blobsDone.Load() > 0 {
			p.mu.Unlock()
			return
		}
	}
	c := &Progress{parent: p, label: label, present: true}
	p.children = append(p.children, c)
	p.mu.Unlock()
	c.AddTotal(0, 1)
	c.BlobAt(path)
}

// BlobDone records one finished blob.
func (p *Progress) BlobDone() {
	for ; p != nil; p = p.parent {
		p.blobsDone.Add(1)
		p.mu.Lock()
		if p.finished != nil {
			close(p.finished)
			p.finished = nil
		}
		p.mu.Unlock()
	}
}

// WaitBlobs returns once more than after blobs are done, or when ctx ends:
// a reader waiting for the next verified blob hears of it at once instead
// of at its next poll.
func (p *Progress) WaitBlobs(ctx context.Context, after int64) {
	if p == nil {
		return
	}
	for {
		// The channel is taken before the count is read: a blob finishing
		// in between closes the channel this waits on.
		p.mu.Lock()
		if p.finished == nil {
			p.finished = make(chan struct{})
		}
		ch := p.finished
		p.mu.Unlock()
		if p.blobsDone.Load() > after {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
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
