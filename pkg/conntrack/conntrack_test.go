package conntrack

import (
	"net/netip"
	"testing"
)

func TestJudged(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name      string
		f         Flow
		dst       string
		dport     uint16
		wantSrcIs string
	}{
		{"no NAT", Flow{Proto: 6, Src: a("10.77.0.11"), SrcPort: 40000, Dst: a("198.51.100.2"), DstPort: 443,
			ReplySrc: a("198.51.100.2"), ReplySrcPort: 443}, "198.51.100.2", 443, "10.77.0.11"},
		// A port forward: the queue saw the LAN host it was rewritten to.
		{"DNAT", Flow{Proto: 6, Src: a("198.51.100.2"), SrcPort: 40000, Dst: a("198.51.100.1"), DstPort: 8080,
			ReplySrc: a("10.88.0.10"), ReplySrcPort: 80}, "10.88.0.10", 80, "198.51.100.2"},
		// Masquerade happens after the queue: the device's own address.
		{"SNAT", Flow{Proto: 17, Src: a("10.77.0.11"), SrcPort: 5000, Dst: a("203.0.113.9"), DstPort: 123,
			ReplySrc: a("203.0.113.9"), ReplySrcPort: 123}, "203.0.113.9", 123, "10.77.0.11"},
		// ICMP keeps the request's type; the address follows the DNAT.
		{"ICMP DNAT", Flow{Proto: 1, Src: a("198.51.100.2"), SrcPort: 7, Dst: a("198.51.100.1"), DstPort: 8 << 8,
			ReplySrc: a("10.88.0.10"), ReplySrcPort: 7}, "10.88.0.10", 8 << 8, "198.51.100.2"},
		{"no reply tuple", Flow{Proto: 6, Src: a("::ffff:10.77.0.11"), Dst: a("::ffff:198.51.100.2"), DstPort: 443},
			"198.51.100.2", 443, "10.77.0.11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, dport := tc.f.Judged()
			if src != a(tc.wantSrcIs) || dst != a(tc.dst) || dport != tc.dport {
				t.Errorf("Judged() = %v, %v, %d; want %s, %s, %d", src, dst, dport, tc.wantSrcIs, tc.dst, tc.dport)
			}
		})
	}
}
