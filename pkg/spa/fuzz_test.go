package spa

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzDecode feeds the decoder arbitrary packets with the fixture key; the
// fields parser is also fed the data directly, as if it had decrypted and
// its digest matched. Nothing may panic.
func FuzzDecode(f *testing.F) {
	k := readKeys(f, "keys.txt", "lab")
	for _, file := range []string{"access.spa", "timeout.spa", "stale.spa", "otherkey.spa", "samehmac.spa"} {
		f.Add(readPacket(f, file))
	}
	f.Add([]byte("U2FsdGVkX1"))
	f.Add([]byte("1688360045425860:YWxpY2U:1796130993:3.0.0:1:MTAuMC4wLjIsdGNwLzIy"))
	f.Add([]byte("1688360045425860:Ym9i:1796130997:3.0.0:3:MTAuMC4wLjIsdGNwLzIyLHVkcC81Njgz:45"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Decoder
		var m Message
		if _, err := d.Verify(data, []*Key{k}); err == nil {
			_ = d.Open(k, &m)
		}
		_ = d.parse(data, &m)
		if fields := bytes.Split(data, []byte(":")); len(fields) <= 12 {
			_ = parseFields(fields, &m)
		}
		g := NewGate(nil, nil)
		_, _ = g.Check(netip.MustParseAddr("10.0.0.2"), data, []*Key{k}, at(fixtureTime), &m)
	})
}
