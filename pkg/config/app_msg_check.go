package config

// encryptedPorts are the standard ports of the encrypted forms of plain
// protocols whose checkers read the messages themselves.
var encryptedPorts = []struct {
	app   string
	proto uint8
	port  uint16
	what  string
}{
	{"mqtt", protoTCP, 8883, `MQTT over TLS: the MQTT checker cannot read it; say app = "tls" and constrain the broker's server_names`},
	{"coap", protoUDP, 5684, "CoAP over DTLS: the CoAP checker cannot read it, so every flow would be a mismatch"},
}

// warnEncryptedApps warns about a rule that asks for a plain protocol's
// checks on that protocol's encrypted port: its flows would all be
// dropped as mismatches, and the rule would do the opposite of what its
// author meant.
func (b *builder) warnEncryptedApps() {
	for _, a := range b.cfg.Allows {
		if a.App == nil {
			continue
		}
		for _, e := range encryptedPorts {
			if a.App.Proto != e.app {
				continue
			}
			for _, s := range a.Services {
				if s.Proto == e.proto && s.PortLo <= e.port && e.port <= s.PortHi && s.PortHi-s.PortLo < 1024 {
					b.diag.warnf(a.App.Pos, "allow rule %q: app = %q on port %d is %s", a.Name, e.app, e.port, e.what)
					break
				}
			}
		}
	}
}
