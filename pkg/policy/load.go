package policy

import (
	"net"
	"net/netip"
	"os"

	"github.com/picoseg/picoseg/pkg/config"
)

// Loaded is a policy file read, validated whole and compiled.
type Loaded struct {
	Config *config.Config
	Policy *Policy
	// Source is the text of every file read, in order: compiling it again
	// (with other gateway addresses, say) gives the same policy hash.
	Source []byte
}

// Load reads the policy file at path and the files it includes, validates
// the whole and compiles it: what `picoseg run` does at start and on every
// reload, and what `check`, `explain` and `replay` do before they judge
// anything. Every error comes back with its FILE:LINE:COL (a
// config.ErrorList); the warnings come back either way and do not stop it.
// The policy is hashed over the text of every file read (opts.Source is
// not used).
func Load(path string, opts Options) (*Loaded, []config.Warning, error) {
	cfg, warnings, err := config.Load(path)
	if err != nil {
		return nil, warnings, err
	}
	var src []byte
	for _, f := range cfg.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, warnings, err
		}
		src = append(src, b...)
	}
	opts.Source = src
	pol, err := Compile(cfg, opts)
	if err != nil {
		return nil, warnings, err
	}
	return &Loaded{Config: cfg, Policy: pol, Source: src}, warnings, nil
}

// HostAddrs lists the addresses of this host's interfaces: on the gateway,
// the addresses "gateway" matches (Options.GatewayAddrs). A failure to list
// them gives none.
func HostAddrs() []netip.Addr { return AddrsOf(net.InterfaceAddrs()) }

// AddrsOf turns what net's interface address lists return
// (net.InterfaceAddrs, net.Interface.Addrs) into addresses; an error gives
// none.
func AddrsOf(addrs []net.Addr, err error) []netip.Addr {
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
