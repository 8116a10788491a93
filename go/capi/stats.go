package capi

import (
	"context"
	"runtime"

	"github.com/oci-client/liboci/abi"
)

// StatsResult is a snapshot of the library's own runtime, for a caller that
// looks for leaks (the soak, bench/soak.py): goroutines and running
// operations go back to where they were once the calls have ended, or
// something was left behind.
type StatsResult struct {
	Goroutines int `json:"goroutines"`
	// Operations is how many calls with an operation_id are registered;
	// EarlyCancels how many cancellations wait for a call not yet started.
	Operations   int    `json:"operations"`
	EarlyCancels int    `json:"early_cancels"`
	HeapBytes    uint64 `json:"heap_bytes"` // live heap objects
	SysBytes     uint64 `json:"sys_bytes"`  // all memory the Go runtime holds from the OS
	Stacks       string `json:"stacks,omitempty"`
}

// RuntimeStats is the body of the RuntimeStats export.
func RuntimeStats(ctx context.Context, input []byte) []byte {
	return Call(ctx, "RuntimeStats", input, func(ctx context.Context, r abi.RuntimeStatsRequest) (StatsResult, error) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		opsMu.Lock()
		ops, early := len(ops), len(canceledEarly)
		opsMu.Unlock()
		res := StatsResult{
			Goroutines:   runtime.NumGoroutine(),
			Operations:   ops,
			EarlyCancels: early,
			HeapBytes:    m.HeapAlloc,
			SysBytes:     m.Sys,
		}
		if r.Stacks {
			buf := make([]byte, 1<<20)
			res.Stacks = string(buf[:runtime.Stack(buf, true)])
		}
		return res, nil
	})
}
