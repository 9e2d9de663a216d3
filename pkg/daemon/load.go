package daemon

import (
	"errors"
	"net/netip"
	"os"

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
// and `picoseg check` do. Every error comes back with its FILE:LINE:COL
// (a config.ErrorList); warnings do not stop it.
func Load(path string, monitor bool) (*Loaded, []config.Warning, error) {
	return loadWith(path, monitor, localAddrs())
}

// loadWith is Load with the gateway's own addresses given.
func loadWith(path string, monitor bool, gateway []netip.Addr) (*Loaded, []config.Warning, error) {
	cfg, warnings, err := config.Load(path)
	if err != nil {
		return nil, warnings, err
	}
	sinks, err := alertSinks(cfg)
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
	l := &Loaded{Config: cfg, Sinks: sinks, src: src, monitor: monitor}
	if l, err = l.withGateway(gateway); err != nil {
		return nil, warnings, err
	}
	return l, warnings, nil
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

// alertSinks turns the [[alert.sink]] tables into alert sink settings and
// checks them, pointing every problem at the key it is about. With no
// sink written, alerts go to the local syslog.
func alertSinks(cfg *config.Config) ([]alert.SinkConfig, error) {
	if len(cfg.Alert.Sinks) == 0 {
		return []alert.SinkConfig{{Type: alert.SinkSyslog}}, nil
	}
	var out []alert.SinkConfig
	var errs config.ErrorList
	for _, s := range cfg.Alert.Sinks {
		c := alert.SinkConfig{Type: s.Type, Address: s.Address, CA: s.CA, Cert: s.Cert, Key: s.Key,
			Facility: s.Facility, Path: s.Path, MaxSize: s.MaxSize, Keep: s.Keep}
		if err := c.Validate(); err != nil {
			pos := s.Pos
			var ce *alert.ConfigError
			if errors.As(err, &ce) {
				if p, ok := s.FieldPos[ce.Field]; ok {
					pos = p
				}
			}
			errs = append(errs, &config.Error{Pos: pos, Msg: "[[alert.sink]]: " + err.Error()})
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
