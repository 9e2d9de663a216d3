//go:build !linux

package daemon

import (
	"context"
	"errors"
)

// Run needs Linux: nftables, NFQUEUE and conntrack.
func Run(ctx context.Context, opts Options) error {
	return errors.New("picoseg run needs Linux (nftables, NFQUEUE, conntrack)")
}
