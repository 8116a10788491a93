package capi

import (
	"context"
	"runtime"

	"github.com/oci-client/liboci/abi"
)

// RuntimeStats is the body of the RuntimeStats export.
func RuntimeStats(ctx context.Context, input []byte) []byte {
	return Call(ctx, "RuntimeStats", input, func(ctx context.Context, r abi.RuntimeStatsRequest) (abi.RuntimeStatsResult, error) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		opsMu.Lock()
		ops, early := len(ops), len(canceledEarly)
		opsMu.Unlock()
		res := abi.RuntimeStatsResult{
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
