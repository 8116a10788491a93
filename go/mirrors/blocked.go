package mirrors

import (
	"context"
	"fmt"
)

// BlockedError says that registries.conf forbids pulling from a registry
// (blocked = true), as podman and skopeo would refuse it.
type BlockedError struct {
	Registry string
	Source   string // the file and [[registry]] entry that blocks it
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("pulling from %s is blocked by %s (blocked = true)", e.Registry, e.Source)
}

// CheckPull refuses a pull marked by Begin whose registry registries.conf
// blocks, before anything is sent.
func CheckPull(ctx context.Context, registry, repo string) error {
	p, c := pullFrom(ctx), callFrom(ctx)
	if p == nil || c == nil || p.origin {
		return nil
	}
	if cfg := c.config(ctx, p.settings, registry, repo); cfg.Blocked != "" {
		return &BlockedError{Registry: Name(registry), Source: cfg.Blocked}
	}
	return nil
}
