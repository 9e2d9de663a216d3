//go:build !linux

package nft

// Conn is a handle on nftables; on this system there is none.
type Conn struct{}

// Dial returns ErrUnsupported on systems without nftables.
func Dial(netnsFD int) (*Conn, error) { return nil, ErrUnsupported }

// Probe returns ErrUnsupported on systems without nftables.
func Probe(conn *Conn) (QueueMethod, error) { return 0, ErrUnsupported }

// Ruleset is an installed picoseg table; on this system there is none.
type Ruleset struct{}

// Install returns ErrUnsupported on systems without nftables.
func Install(conn *Conn, opts Options, method QueueMethod) (*Ruleset, error) {
	return nil, ErrUnsupported
}

// Method returns 0 on systems without nftables.
func (r *Ruleset) Method() QueueMethod { return 0 }

// Options returns the zero Options on systems without nftables.
func (r *Ruleset) Options() Options { return Options{} }

// Remove returns ErrUnsupported on systems without nftables.
func (r *Ruleset) Remove() error { return ErrUnsupported }

// Remove returns ErrUnsupported on systems without nftables.
func Remove(conn *Conn) error { return ErrUnsupported }

// Counters returns ErrUnsupported on systems without nftables.
func (r *Ruleset) Counters() (Counters, error) { return Counters{}, ErrUnsupported }
