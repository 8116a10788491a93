package abi

// MaxEvents bounds the events a call keeps between two reads; when more
// arrive the oldest go, and the next read says how many (events_dropped).
const MaxEvents = 1000

// Event is one thing a call did that its caller may want to know of, as it
// happens. A request with "events": true gets them, oldest first, with each
// OperationProgress read (those made since the last read) and the rest in
// its envelope, so each arrives once. Kind names the one member that
// carries the event's fields, of the same name; a reader skips a kind it
// does not know (new ones may come without a new ABI version).
type Event struct {
	// Seq numbers the call's events 1, 2, 3…: a gap is events dropped.
	Seq int64 `json:"seq"`
	// Time is seconds since the Unix epoch.
	Time float64 `json:"time"`
	Kind string  `json:"kind"`

	FileFound          *FileFound          `json:"file_found,omitempty"`
	FileVerified       *FileVerified       `json:"file_verified,omitempty"`
	BlobDone           *BlobDone           `json:"blob_done,omitempty"`
	BlobRetried        *BlobRetried        `json:"blob_retried,omitempty"`
	RedirectFollowed   *RedirectFollowed   `json:"redirect_followed,omitempty"`
	RangeRefused       *RangeRefused       `json:"range_refused,omitempty"`
	ConnectionsChanged *ConnectionsChanged `json:"connections_changed,omitempty"`
	LeaseWaiting       *LeaseWaiting       `json:"lease_waiting,omitempty"`
	LeaseBroken        *LeaseBroken        `json:"lease_broken,omitempty"`
}

// EventData is the fields of one kind of Event.
type EventData interface {
	// EventKind is the kind's name, which is also its member's.
	EventKind() string
}

// EventKinds lists a zero value of every kind, in the docs' order.
var EventKinds = []EventData{
	FileFound{}, FileVerified{}, BlobDone{}, BlobRetried{}, RedirectFollowed{},
	RangeRefused{}, ConnectionsChanged{}, LeaseWaiting{}, LeaseBroken{},
}

// NewEvent is the event that carries d.
func NewEvent(seq int64, time float64, d EventData) Event {
	e := Event{Seq: seq, Time: time, Kind: d.EventKind()}
	switch d := d.(type) {
	case FileFound:
		e.FileFound = &d
	case FileVerified:
		e.FileVerified = &d
	case BlobDone:
		e.BlobDone = &d
	case BlobRetried:
		e.BlobRetried = &d
	case RedirectFollowed:
		e.RedirectFollowed = &d
	case RangeRefused:
		e.RangeRefused = &d
	case ConnectionsChanged:
		e.ConnectionsChanged = &d
	case LeaseWaiting:
		e.LeaseWaiting = &d
	case LeaseBroken:
		e.LeaseBroken = &d
	}
	return e
}

// FileFound is a file a pull found in place, verified, without downloading
// it.
type FileFound struct {
	// Path is where the verified file is: the blob in the cache, or the
	// file in local_dir.
	Path string `json:"path"`
	// Label is the file's name in the model (the progress's label).
	Label  string `json:"label"`
	Digest string `json:"digest"`
	// How is "cache" (the cache held it), "local" (local_dir held it) or
	// "other_process" (another process fetched it while this one waited).
	How string `json:"how"`
}

// EventKind implements EventData.
func (FileFound) EventKind() string { return "file_found" }

// FileVerified is a blob downloaded, its digest checked and the file put
// in place at Path: a reader may open it now.
type FileVerified struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// EventKind implements EventData.
func (FileVerified) EventKind() string { return "file_verified" }

// BlobDone is a blob download finished: what it cost.
type BlobDone struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Fetched is the bytes received for it (less than Size when earlier
	// partial data was resumed, more when broken streams were retried).
	Fetched int64 `json:"fetched"`
	// ElapsedMS is how long its download took.
	ElapsedMS int64 `json:"elapsed_ms"`
}

// EventKind implements EventData.
func (BlobDone) EventKind() string { return "blob_done" }

// BlobRetried is a request retried, or a broken stream resumed.
type BlobRetried struct {
	// Digest is the blob concerned ("" for a request that is not for a
	// blob: a manifest, a token).
	Digest string `json:"digest"`
	// Reason is the status ("503 Service Unavailable") or the error.
	Reason string `json:"reason"`
	// WaitMS is how long it waits before the next try.
	WaitMS int64 `json:"wait_ms"`
	// Attempt is the number of the try about to be made (2 for the first
	// retry); Attempts how many are allowed (0 for a stream, which resumes
	// as long as it makes progress).
	Attempt  int `json:"attempt"`
	Attempts int `json:"attempts"`
	// RetryAfter is true when the registry's Retry-After set the wait.
	RetryAfter bool `json:"retry_after"`
	// ResumeAt is the byte a broken stream resumes at (0 for a request
	// tried again from its start).
	ResumeAt int64 `json:"resume_at"`
}

// EventKind implements EventData.
func (BlobRetried) EventKind() string { return "blob_retried" }

// RedirectFollowed is a redirect the registry answered with (to a storage
// bucket or CDN, usually): hosts only, never the URL, whose query is a
// credential.
type RedirectFollowed struct {
	FromHost string `json:"from_host"`
	ToHost   string `json:"to_host"`
	Status   int    `json:"status"`
}

// EventKind implements EventData.
func (RedirectFollowed) EventKind() string { return "redirect_followed" }

// RangeRefused is a registry that did not honour a range request, and the
// fallback taken.
type RangeRefused struct {
	Digest string `json:"digest"`
	// Fallback is "one_stream" (the blob comes over one connection instead
	// of chunks) or "rest_one_stream" (from At on, over one stream).
	Fallback string `json:"fallback"`
	// At is the byte the fallback starts from.
	At int64 `json:"at"`
}

// EventKind implements EventData.
func (RangeRefused) EventKind() string { return "range_refused" }

// ConnectionsChanged is the tuner adding connections or taking them back.
type ConnectionsChanged struct {
	// Before and After are the connection budget before and after the
	// change (named so that no reader's keyword stands in the way).
	Before int `json:"before"`
	After  int `json:"after"`
	// Why is "slow_connections" (each connection brings little: more may
	// help) or "no_gain" (the added ones did not raise the rate).
	Why string `json:"why"`
	// RateBps is the rate that decided it, all connections together, in
	// bytes per second.
	RateBps int64 `json:"rate_bps"`
}

// EventKind implements EventData.
func (ConnectionsChanged) EventKind() string { return "connections_changed" }

// LeaseWaiting is this call waiting while another process (or call) holds
// the lease on a blob or snapshot it needs: that one is fetching it.
type LeaseWaiting struct {
	// Digest is the blob waited for ("" when the lease is not a blob's).
	Digest string `json:"digest"`
	// Lease is the lease file.
	Lease string `json:"lease"`
	// HolderPID and HolderHost name the holder, as far as the lease file
	// says (0 and "" when it does not).
	HolderPID  int    `json:"holder_pid"`
	HolderHost string `json:"holder_host"`
}

// EventKind implements EventData.
func (LeaseWaiting) EventKind() string { return "lease_waiting" }

// LeaseBroken is a lease broken: a stale one this call broke, or this
// call's own broken by another process (Ours) because it stalled.
type LeaseBroken struct {
	Digest string `json:"digest"`
	Lease  string `json:"lease"`
	Why    string `json:"why"`
	Ours   bool   `json:"ours"`
}

// EventKind implements EventData.
func (LeaseBroken) EventKind() string { return "lease_broken" }
