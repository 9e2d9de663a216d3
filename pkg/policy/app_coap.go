package policy

import (
	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
)

// compileCoAP compiles [allow.coap]; without the table, any CoAP request
// passes (the flow must still be CoAP). As with compileMQTT, the decoder
// has checked every method and path, and a nil checker would make
// compileApp reject the rule.
func compileCoAP(c *config.CoAPRule) appid.Checker {
	var k appid.CoAPConstraint
	if c != nil {
		k = appid.CoAPConstraint{Methods: c.Methods, Paths: c.Paths}
	}
	checker, err := appid.NewCoAPChecker(k)
	if err != nil {
		return nil
	}
	return checker
}
