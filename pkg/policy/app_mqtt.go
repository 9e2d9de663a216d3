package policy

import (
	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
)

// compileMQTT compiles [allow.mqtt]; without the table, any MQTT client
// that opens with a CONNECT passes. The config decoder has checked every
// pattern and filter, so NewMQTTChecker does not fail on a loaded policy;
// if it did, the nil checker makes compileApp reject the rule rather than
// drop the constraint.
func compileMQTT(m *config.MQTTRule) appid.Checker {
	var c appid.MQTTConstraint
	if m != nil {
		c = appid.MQTTConstraint{ClientIDs: m.ClientIDs, Publish: m.Publish, Subscribe: m.Subscribe}
	}
	checker, err := appid.NewMQTTChecker(c)
	if err != nil {
		return nil
	}
	return checker
}
