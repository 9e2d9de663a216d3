//go:build !linux

package conntrack

import (
	"context"
	"errors"
)

// ErrUnsupported is returned on systems without Linux connection tracking.
var ErrUnsupported = errors.New("conntrack: only available on Linux")

// Conn is a connection to conntrack; on this system there is none.
type Conn struct{}

// Option configures Open.
type Option func()

// WithNetNS is accepted for portability; Open fails anyway.
func WithNetNS(fd int) Option { return func() {} }

// Open returns ErrUnsupported on systems without conntrack.
func Open(opts ...Option) (*Conn, error) { return nil, ErrUnsupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// Flows returns ErrUnsupported.
func (c *Conn) Flows(ctx context.Context) ([]Flow, error) { return nil, ErrUnsupported }

// Each returns ErrUnsupported.
func (c *Conn) Each(ctx context.Context, fn func(Flow) error) error { return ErrUnsupported }

// SetMark returns ErrUnsupported.
func (c *Conn) SetMark(f Flow, mark, mask uint32) error { return ErrUnsupported }

// Delete returns ErrUnsupported.
func (c *Conn) Delete(f Flow) error { return ErrUnsupported }

// ClearMarks returns ErrUnsupported.
func (c *Conn) ClearMarks(mask uint32) (int, error) { return 0, ErrUnsupported }

// EnableAccounting returns ErrUnsupported.
func EnableAccounting() error { return ErrUnsupported }
