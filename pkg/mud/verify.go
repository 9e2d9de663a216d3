package mud

import (
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// DNSNamesSupported reports whether the policy language accepts
// destinations by DNS name (`to = "dns:NAME"`). It asks the config parser
// itself, so rules to DNS names turn active as soon as the parser learns
// them, and never before.
func DNSNamesSupported() bool {
	const probe = `[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]
[[group]]
name = "g"
[[allow]]
name = "r"
from = "group:g"
to = "dns:example.com"
`
	_, _, err := config.Parse("probe.toml", []byte(probe))
	return err == nil
}

// NamesOf lists the names a policy defines, for Options.Base.
func NamesOf(cfg *config.Config) *Names {
	n := &Names{Zones: map[string]bool{}, Groups: map[string]bool{}, Devices: map[string]bool{}, Rules: map[string]bool{}}
	for _, z := range cfg.Zones {
		n.Zones[z.Name] = true
	}
	for _, g := range cfg.Groups {
		n.Groups[g.Name] = true
	}
	for _, d := range cfg.Devices {
		n.Devices[d.Name] = true
	}
	for _, a := range cfg.Allows {
		n.Rules[a.Name] = true
	}
	return n
}

// Verify loads a written proposal as `picoseg check` would (name is where
// it will live: includes are relative to it) and returns the compiled
// policy, or the first error. An import whose output does not load is a
// bug or a mapping the base cannot take; either way it must not reach a
// reviewer as a policy.
func Verify(name string, text []byte) (*policy.Policy, []config.Warning, error) {
	cfg, warnings, err := config.Parse(name, text)
	if err != nil {
		return nil, warnings, err
	}
	pol, err := policy.Compile(cfg, policy.Options{Source: text})
	return pol, warnings, err
}
