package daemon

import (
	"net/netip"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Loaded is a policy read from disk, validated whole and compiled.
type Loaded struct {
	Config *config.Config
	Policy *policy.Policy
	// Sinks are the alert destinations, checked.
	Sinks []alert.SinkConfig

	// src is the policy text and gateway the addresses it was compiled
	// with: an address added to the gateway later compiles the same text
	// again (withGateway).
	src     []byte
	gateway []netip.Addr
	monitor bool
}

// Load reads, validates and compiles the policy at path, as `picoseg run`
// does at start and on every reload (policy.Load), and checks its alert
// sinks. monitor forces monitor mode whatever the policy says. Every error
// comes back with its FILE:LINE:COL (a config.ErrorList); warnings do not
// stop it.
func Load(path string, monitor bool) (*Loaded, []config.Warning, error) {
	return loadWith(path, monitor, localAddrs())
}

// loadWith is Load with the gateway's own addresses given.
func loadWith(path string, monitor bool, gateway []netip.Addr) (*Loaded, []config.Warning, error) {
	pl, warnings, err := policy.Load(path, policy.Options{GatewayAddrs: gateway})
	if err != nil {
		return nil, warnings, err
	}
	sinks, err := alert.ConfigSinks(pl.Config)
	if err != nil {
		return nil, warnings, err
	}
	if monitor {
		pl.Policy.Mode = config.ModeMonitor
	}
	return &Loaded{Config: pl.Config, Policy: pl.Policy, Sinks: sinks, src: pl.Source,
		gateway: sortedAddrs(gateway), monitor: monitor}, warnings, nil
}

// withGateway compiles l's policy text again with the gateway's addresses
// gateway, as loading the same file would.
func (l *Loaded) withGateway(gateway []netip.Addr) (*Loaded, error) {
	pol, err := policy.Compile(l.Config, policy.Options{GatewayAddrs: gateway, Source: l.src})
	if err != nil {
		return nil, err
	}
	if l.monitor {
		pol.Mode = config.ModeMonitor
	}
	next := *l
	next.Policy, next.gateway = pol, sortedAddrs(gateway)
	return &next, nil
}
