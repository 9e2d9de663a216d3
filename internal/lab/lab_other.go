//go:build !linux

package lab

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
)

// errUnsupported is what every lab operation returns off Linux.
var errUnsupported = errors.New("lab: network namespaces need Linux, not " + runtime.GOOS)

// Available reports whether labs can be built here; off Linux they cannot.
func Available() error { return errUnsupported }

// New builds a lab; off Linux it fails.
func New(ctx context.Context, opts Options) (*Lab, error) { return nil, errUnsupported }

// Close tears the lab down; off Linux there is nothing to tear down.
func (l *Lab) Close() error { return nil }

// Cleanup removes labs left behind by dead processes; off Linux there are none.
func Cleanup(ctx context.Context) (removed int, err error) { return 0, nil }

// EnableBridgeFilter needs Linux.
func (l *Lab) EnableBridgeFilter() error { return errUnsupported }

// BridgeFilterEnabled needs Linux.
func (l *Lab) BridgeFilterEnabled() (bool, error) { return false, errUnsupported }

// Do needs Linux.
func (h *Host) Do(fn func() error) error { return errUnsupported }

// Command returns a command that fails: namespaces need Linux.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Err = errUnsupported
	return cmd
}

// Run needs Linux.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	return "", errUnsupported
}

// Start needs Linux.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Process, error) {
	return nil, errUnsupported
}
