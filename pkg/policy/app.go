package policy

import (
	"fmt"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
)

// compileApp compiles a rule's application constraint into r.App. A
// protocol without a compiler here is an error, never "no constraint": a
// rule that asks for application identity must not silently lose it.
func compileApp(r *Rule, a *config.AppRule) error {
	if a == nil {
		return nil
	}
	proto, ok := appid.ParseProto(a.Proto)
	if !ok {
		return fmt.Errorf("%s: unknown app %q", a.Pos, a.Proto)
	}
	var c appid.Checker
	switch proto {
	case appid.TLS:
		c = compileTLS(a.TLS)
	case appid.HTTP:
		c = compileHTTP(a.HTTP)
	case appid.Modbus:
		c = compileModbus(a.Modbus)

		// mqtt, coap
	case appid.MQTT:
		c = compileMQTT(a.MQTT)
	case appid.CoAP:
		c = compileCoAP(a.CoAP)

		// dns
	case appid.DNS:
		c = compileDNSCheck(a.DNS)

	}
	if c == nil {
		return fmt.Errorf("%s: app %q is not supported by this build", a.Pos, a.Proto)
	}
	r.App = c
	r.AppAllowUnidentified = a.Unidentified == config.UnidentifiedAllow
	return nil
}

func choice(s string) appid.Choice {
	if s == "allow" {
		return appid.Admit
	}
	return appid.Refuse
}

// nameSet compiles a name list; nil (any name) when the list is empty.
func nameSet(names []string) *appid.NameSet {
	if len(names) == 0 {
		return nil
	}
	return appid.NewNameSet(names)
}

func compileTLS(t *config.TLSRule) appid.Checker {
	if t == nil {
		return appid.NewTLS(appid.TLSConfig{NoSNI: appid.Admit, ECH: appid.Admit})
	}
	return appid.NewTLS(appid.TLSConfig{Names: nameSet(t.ServerNames), NoSNI: choice(t.NoSNI), ECH: choice(t.ECH)})
}

func compileHTTP(h *config.HTTPRule) appid.Checker {
	if h == nil {
		return appid.NewHTTP(appid.HTTPConfig{})
	}
	return appid.NewHTTP(appid.HTTPConfig{Hosts: nameSet(h.Hosts), Methods: h.Methods})
}

func compileModbus(m *config.ModbusRule) appid.Checker {
	if m == nil {
		return appid.NewModbus(appid.ModbusConfig{AnyFunction: true})
	}
	return appid.NewModbus(appid.ModbusConfig{AnyFunction: !m.ReadOnly, Writes: m.Writes, Units: m.Units})
}
