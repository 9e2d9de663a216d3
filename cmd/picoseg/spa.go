package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// printSPA says, for `check`, where knocks are taken, which keys may be
// used from where, and which rules are closed until a knock.
func printSPA(stdout io.Writer, pol *policy.Policy, cfg *config.Config) {
	if !pol.SPA.Enabled() {
		return
	}
	fmt.Fprintf(stdout, "single packet authorization (fwknop 3.0.0): knocks to udp/%d on the gateway, dropped after judging; replay cache %s\n",
		pol.SPA.Port, pol.SPA.ReplayFile)
	for _, k := range cfg.SPA.Keys {
		var from []string
		for _, u := range k.Users {
			from = append(from, u.String())
		}
		where := "inline"
		if k.File != "" {
			where = k.File
		}
		fmt.Fprintf(stdout, "  key %-16s from %s (%s)\n", k.Name, strings.Join(from, ", "), where)
	}
	for _, r := range pol.Rules[:pol.UserRules] {
		if r.Auth == nil {
			continue
		}
		var keys []string
		for _, id := range r.Auth.Keys {
			keys = append(keys, pol.SPA.Keys[id].Key.Name)
		}
		fmt.Fprintf(stdout, "  rule %-15s closed until a knock with %s; open %v after it\n", r.Name, strings.Join(keys, " or "), r.Auth.Window)
	}
}
