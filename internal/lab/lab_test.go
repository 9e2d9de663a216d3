package lab

import (
	"net/netip"
	"strings"
	"testing"
)

// These tests need neither root nor Linux.

func TestPlanDefault(t *testing.T) {
	l, err := plan(DefaultOptions(), "abc123")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ns, port, addr, addr6, router string
		side                                Side
	}{
		{"cam", "psl-abc123-cam", "v-cam", "10.77.0.11", "fd00:77::11", "10.77.0.1", SideIoT},
		{"plug1", "psl-abc123-plug1", "v-plug1", "10.77.0.21", "fd00:77::21", "10.77.0.1", SideIoT},
		{"plug2", "psl-abc123-plug2", "v-plug2", "10.77.0.22", "fd00:77::22", "10.77.0.1", SideIoT},
		{"hub", "psl-abc123-hub", "v-hub", "10.77.0.30", "fd00:77::30", "10.77.0.1", SideIoT},
		{"lan", "psl-abc123-lan", "lan0", "10.88.0.10", "fd00:88::10", "10.88.0.1", SideLAN},
		{"wan", "psl-abc123-wan", "wan0", "198.51.100.2", "2001:db8:100::2", "198.51.100.1", SideWAN},
	}
	for _, tt := range tests {
		h := l.Host(tt.name)
		if h == nil {
			t.Fatalf("host %q missing", tt.name)
		}
		got := []string{h.NetNS, h.Port, h.Addr.String(), h.Addr6.String(), h.Router.String(), string(h.Side)}
		want := []string{tt.ns, tt.port, tt.addr, tt.addr6, tt.router, string(tt.side)}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("host %s: got %v, want %v", tt.name, got, want)
		}
	}
	if l.Gateway.NetNS != "psl-abc123-gw" || l.Host("gw") != l.Gateway {
		t.Errorf("gateway = %v", l.Gateway)
	}
	if len(l.Sides) != 3 || !l.Sides[SideIoT].Bridge || l.Sides[SideLAN].Bridge || l.Sides[SideWAN].Bridge {
		t.Errorf("sides = %+v", l.Sides)
	}
	if ns := l.Namespaces(); len(ns) != 7 || ns[len(ns)-1] != "psl-abc123-gw" {
		t.Errorf("namespaces = %v, want 7 with the gateway last", ns)
	}
}

func TestPlanSeveralLANHostsShareABridge(t *testing.T) {
	opts := DefaultOptions()
	opts.Hosts = append(opts.Hosts, HostSpec{Name: "nvr", Side: SideLAN, Addr: netip.MustParseAddr("10.88.0.20"), MAC: mustMAC("02:00:00:00:88:20")})
	l, err := plan(opts, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Sides[SideLAN].Bridge || l.Host("lan").Port != "v-lan" || l.Host("nvr").Port != "v-nvr" {
		t.Errorf("LAN side %+v, ports %s %s; want a bridge lan0 with ports v-lan, v-nvr", l.Sides[SideLAN], l.Host("lan").Port, l.Host("nvr").Port)
	}
}

func TestPlanRejects(t *testing.T) {
	mac := mustMAC("02:00:00:00:00:99")
	addr := netip.MustParseAddr("10.77.0.99")
	tests := []struct {
		name string
		spec HostSpec
		id   string
		want string
	}{
		{"long name", HostSpec{Name: "a-very-long-name", Side: SideIoT, Addr: addr, MAC: mac}, "x", "bad name"},
		{"upper case", HostSpec{Name: "Cam", Side: SideIoT, Addr: addr, MAC: mac}, "x", "bad name"},
		{"gw", HostSpec{Name: "gw", Side: SideIoT, Addr: addr, MAC: mac}, "x", "gateway"},
		{"duplicate name", HostSpec{Name: "cam", Side: SideIoT, Addr: addr, MAC: mac}, "x", "duplicate name"},
		{"unknown side", HostSpec{Name: "tv", Side: "dmz", Addr: addr, MAC: mac}, "x", "unknown side"},
		{"outside subnet", HostSpec{Name: "tv", Side: SideIoT, Addr: netip.MustParseAddr("10.88.0.99"), MAC: mac}, "x", "not a host address"},
		{"gateway address", HostSpec{Name: "tv", Side: SideIoT, Addr: netip.MustParseAddr("10.77.0.1"), MAC: mac}, "x", "not a host address"},
		{"broadcast", HostSpec{Name: "tv", Side: SideIoT, Addr: netip.MustParseAddr("10.77.0.255"), MAC: mac}, "x", "not a host address"},
		{"duplicate address", HostSpec{Name: "tv", Side: SideIoT, Addr: netip.MustParseAddr("10.77.0.11"), MAC: mac}, "x", "already used"},
		{"multicast MAC", HostSpec{Name: "tv", Side: SideIoT, Addr: addr, MAC: mustMAC("01:00:5e:00:00:01")}, "x", "not a unicast"},
		{"duplicate MAC", HostSpec{Name: "tv", Side: SideIoT, Addr: addr, MAC: mustMAC("02:00:00:00:00:11")}, "x", "already used"},
		{"IPv6 outside subnet", HostSpec{Name: "tv", Side: SideIoT, Addr: addr, MAC: mac, Addr6: netip.MustParseAddr("fd00:88::99")}, "x", "not a host address"},
		{"bad id", HostSpec{Name: "tv", Side: SideIoT, Addr: addr, MAC: mac}, "Bad-ID", "bad ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Hosts = append(opts.Hosts, tt.spec)
			_, err := plan(opts, tt.id)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("plan error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDeriveAddr6(t *testing.T) {
	for _, tt := range []struct{ prefix, addr, want string }{
		{"fd00:77::1/64", "10.77.0.11", "fd00:77::11"},
		{"fd00:77::1/64", "10.77.0.254", "fd00:77::254"},
		{"2001:db8:100::1/64", "198.51.100.2", "2001:db8:100::2"},
	} {
		got := deriveAddr6(netip.MustParsePrefix(tt.prefix), netip.MustParseAddr(tt.addr))
		if got.String() != tt.want {
			t.Errorf("deriveAddr6(%s, %s) = %v, want %s", tt.prefix, tt.addr, got, tt.want)
		}
	}
}

func TestParseIperf3(t *testing.T) {
	tests := []struct {
		name, json string
		want       Iperf3Result
		wantErr    string
	}{
		{"tcp", `{"end":{"sum_sent":{"bits_per_second":2e9,"retransmits":3},"sum_received":{"bits_per_second":1.5e9}}}`,
			Iperf3Result{BitsPerSecond: 1.5e9, Retransmits: 3}, ""},
		{"udp", `{"end":{"sum":{"bits_per_second":1e6,"lost_percent":2.5}}}`,
			Iperf3Result{BitsPerSecond: 1e6, LostPercent: 2.5}, ""},
		{"error", `{"start":{},"error":"unable to connect to server: Connection refused"}`, Iperf3Result{}, "Connection refused"},
		{"garbage", `iperf3: error`, Iperf3Result{}, "unreadable"},
		{"no summary", `{"end":{}}`, Iperf3Result{}, "no summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf3([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestHasListener(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 0100007F:1451 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
`
	if !hasListener(strings.NewReader(table), 5201) {
		t.Error("listener on 5201 not found")
	}
	if hasListener(strings.NewReader(table), 22) {
		t.Error("established socket on 22 taken for a listener")
	}
}

func TestChecksum(t *testing.T) {
	// An echo request with the checksum in place sums to zero.
	msg := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'a', 'b', 'c'}
	c := checksum(msg)
	msg[2], msg[3] = byte(c>>8), byte(c)
	if checksum(msg) != 0 {
		t.Errorf("checksum over a checksummed message = %#x, want 0", checksum(msg))
	}
}
