package config

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Alert holds the [alert] table: how events become alerts, and where they
// go.
type Alert struct {
	// Window is how long repeats of one alert type from one device are
	// folded into a single summary (default 60s).
	Window time.Duration
	// ScanWindow and ScanThreshold: a device reaching ScanThreshold
	// distinct destinations or ports within ScanWindow raises
	// possible_scan (defaults 10s and 20).
	ScanWindow    time.Duration
	ScanThreshold int
	// Sinks are the [[alert.sink]] tables. With none, alerts go to the
	// local syslog (/dev/log).
	Sinks []AlertSink
	Pos   Pos
}

// AlertSink is one [[alert.sink]] table. Its fields are checked further by
// the alert package, which knows the address schemes; Pos and the field
// positions let those errors point at the policy file.
type AlertSink struct {
	Type     string // "syslog" or "jsonl"
	Address  string // "" for /dev/log, or udp://, tcp://, tls://, unix://
	CA       string
	Cert     string
	Key      string
	Facility string
	Path     string
	MaxSize  int64
	Keep     int
	Pos      Pos
	// FieldPos gives the position of each key written, by key name.
	FieldPos map[string]Pos
}

// Inventory holds the [inventory] table.
type Inventory struct {
	// Leases is a DHCP leases file in dnsmasq format (OpenWrt:
	// /tmp/dhcp.leases), for device hostnames; "" for none.
	Leases string
	// UnknownGroup is the group that devices not in the policy are placed
	// in, so the policy can restrict them; "" for none.
	UnknownGroup string
	// State is where the inventory is kept across restarts (default
	// /var/lib/picoseg/devices.json).
	State string
	Pos   Pos
}

// Metrics holds the [metrics] table.
type Metrics struct {
	// Listen is the address of the Prometheus endpoint; "" (the default)
	// turns it off.
	Listen string
	Pos    Pos
}

// DefaultInventoryState is where the device inventory is kept by default.
const DefaultInventoryState = "/var/lib/picoseg/devices.json"

func defaultAlert() Alert {
	return Alert{Window: time.Minute, ScanWindow: 10 * time.Second, ScanThreshold: 20}
}

// alert reads the [alert] table and its [[alert.sink]] tables.
func (b *builder) alert(t table) {
	t.name = "[alert]"
	t.checkKeys("window", "scan_window", "scan_threshold", "sink")
	a := &b.cfg.Alert
	a.Pos = t.Pos()
	for _, k := range []struct {
		key string
		dst *time.Duration
	}{{"window", &a.Window}, {"scan_window", &a.ScanWindow}} {
		if s, pos, ok := t.str(k.key); ok {
			d, err := parseDuration(s)
			if err != nil || d <= 0 {
				t.errorf(pos, "%s must be a positive duration such as \"60s\", not %q", k.key, s)
				continue
			}
			*k.dst = d
		}
	}
	if n, pos, ok := t.integer("scan_threshold"); ok {
		if n < 2 || n > 100000 {
			t.errorf(pos, "scan_threshold must be 2-100000, not %d", n)
		} else {
			a.ScanThreshold = int(n)
		}
	}
	for _, st := range t.tables("sink") {
		b.alertSink(st)
	}
}

func (b *builder) alertSink(t table) {
	t.checkKeys("type", "address", "ca", "cert", "key", "facility", "path", "max_size", "keep")
	s := AlertSink{Pos: t.Pos(), FieldPos: map[string]Pos{}}
	for _, f := range []struct {
		key string
		dst *string
	}{{"type", &s.Type}, {"address", &s.Address}, {"ca", &s.CA}, {"cert", &s.Cert}, {"key", &s.Key}, {"facility", &s.Facility}, {"path", &s.Path}} {
		if v, pos, ok := t.str(f.key); ok {
			*f.dst = v
			s.FieldPos[f.key] = pos
		}
	}
	if !t.has("type") {
		t.errorf(t.Pos(), `[[alert.sink]] needs a type: "syslog" or "jsonl"`)
	}
	if v := t.value("max_size"); v != nil {
		pos := t.valuePos("max_size")
		s.FieldPos["max_size"] = pos
		n, err := sizeValue(v)
		if err != nil {
			t.errorf(pos, "max_size: %v", err)
		} else {
			s.MaxSize = n
		}
	}
	if n, pos, ok := t.integer("keep"); ok {
		s.FieldPos["keep"] = pos
		if n < 1 || n > 100 {
			t.errorf(pos, "keep must be 1-100, not %d", n)
		} else {
			s.Keep = int(n)
		}
	}
	b.cfg.Alert.Sinks = append(b.cfg.Alert.Sinks, s)
}

// sizeValue reads a size written as a TOML integer or a string ("10MB").
func sizeValue(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		if x <= 0 {
			return 0, errors.New("a size must be more than 0 bytes")
		}
		return x, nil
	case string:
		return parseSize(x)
	}
	return 0, fmt.Errorf("expected a size, got %s", typeName(v))
}

func (b *builder) inventory(t table) {
	t.name = "[inventory]"
	t.checkKeys("leases", "unknown_group", "state")
	inv := &b.cfg.Inventory
	inv.Pos = t.Pos()
	if s, _, ok := t.str("leases"); ok {
		inv.Leases = s
	}
	if s, pos, ok := t.str("unknown_group"); ok {
		inv.UnknownGroup = s
		b.src.unknownGroup = pos
	}
	if s, pos, ok := t.str("state"); ok {
		if s == "" {
			t.errorf(pos, "state must not be empty")
		} else {
			inv.State = s
		}
	}
}

func (b *builder) metrics(t table) {
	t.name = "[metrics]"
	t.checkKeys("listen")
	m := &b.cfg.Metrics
	m.Pos = t.Pos()
	if s, pos, ok := t.str("listen"); ok {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			t.errorf(pos, "listen must be an address and port such as \"127.0.0.1:9107\", not %q", s)
			return
		}
		m.Listen = s
		// The endpoint has no authentication and names devices, rules and
		// their traffic: on a gateway, an address other than loopback is
		// usually reachable from the very networks picoseg guards.
		if !ap.Addr().IsLoopback() {
			t.warnf(pos, "listen %q is not a loopback address: anyone who reaches it reads device names, rules and traffic counts (the endpoint has no authentication); prefer 127.0.0.1 or ::1, or let only the scraper reach the port", s)
		}
	}
}

// checkInventory resolves the unknown-devices group.
func (b *builder) checkInventory(groups map[string]int) {
	g := b.cfg.Inventory.UnknownGroup
	if g == "" {
		return
	}
	if _, ok := groups[g]; !ok {
		b.diag.errorf(b.src.unknownGroup, "unknown_group %q is not a [[group]]", g)
	}
}
