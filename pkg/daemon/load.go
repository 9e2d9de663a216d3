package daemon

import (
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
}

// Load reads, validates and compiles the policy at path, as `picoseg run`
// does at start and on every reload (policy.Load), and checks its alert
// sinks. monitor forces monitor mode whatever the policy says. Every error
// comes back with its FILE:LINE:COL (a config.ErrorList); warnings do not
// stop it.
func Load(path string, monitor bool) (*Loaded, []config.Warning, error) {
	l, warnings, err := policy.Load(path, policy.Options{GatewayAddrs: localAddrs()})
	if err != nil {
		return nil, warnings, err
	}
	sinks, err := alert.ConfigSinks(l.Config)
	if err != nil {
		return nil, warnings, err
	}
	if monitor {
		l.Policy.Mode = config.ModeMonitor
	}
	return &Loaded{Config: l.Config, Policy: l.Policy, Sinks: sinks}, warnings, nil
}
