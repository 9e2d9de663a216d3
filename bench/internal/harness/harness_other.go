//go:build !linux

package harness

import (
	"context"
	"errors"

	"github.com/picoseg/picoseg/bench/internal/stats"
)

// Run needs Linux network namespaces, nftables and NFQUEUE.
func Run(ctx context.Context, cfg Config) (*stats.Report, error) {
	return nil, errors.New("harness: the lab benchmark needs Linux")
}
