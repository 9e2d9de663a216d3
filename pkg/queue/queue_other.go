//go:build !linux

package queue

import (
	"context"
	"errors"
)

// ErrUnsupported is returned on systems without NFQUEUE.
var ErrUnsupported = errors.New("queue: NFQUEUE is only available on Linux")

func (a *Adapter) run(ctx context.Context) error { return ErrUnsupported }
