package policy

import (
	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
)

// compileDNSCheck compiles [allow.dns]; without the table the checker
// still requires that the flow speak DNS, one standard query at a time.
func compileDNSCheck(d *config.DNSRule) appid.Checker {
	if d == nil {
		return appid.NewDNS(appid.DNSConfig{})
	}
	return appid.NewDNS(appid.DNSConfig{Names: nameSet(d.Names), MaxName: d.MaxName, MaxEntropy: d.MaxEntropy,
		Rate: d.Rate.Count, Per: d.Rate.Per})
}

// DNSChecker returns rule r's DNS checker, nil when the rule has none.
func (p *Policy) DNSChecker(r int32) *appid.DNSChecker {
	if r < 0 || int(r) >= len(p.Rules) {
		return nil
	}
	c, _ := p.Rules[r].App.(*appid.DNSChecker)
	return c
}
