package oci

import (
	"context"
	"sync"
)

// runAll runs work(ctx, i) for i in 0..n-1, in order and at most limit at
// once, on a context that the first failure cancels; start(i), when given,
// runs in order just before work i begins. It returns that first failure as
// work returned it, else the error of a ctx that ended, else nil.
func runAll(ctx context.Context, n, limit int, start func(i int), work func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if start != nil {
			start(i)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := work(ctx, i); err != nil {
				once.Do(func() {
					firstErr = err
					cancel(err)
				})
			}
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return AsError(err)
	}
	return nil
}
