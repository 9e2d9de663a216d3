package config

import (
	"errors"
	"fmt"
	"strings"
)

const (
	errEndpointFrom = `want "any", "device:NAME", "group:NAME", "zone:NAME" or "net:CIDR"`
	errEndpointTo   = `want "any", "gateway", "device:NAME", "group:NAME", "zone:NAME" or "net:CIDR"`
)

// parseEndpoint parses one side of an allow rule. The gateway is only a
// destination: traffic the gateway itself originates is not forwarded and
// never reaches the hooks picoseg judges. A net: prefix with host bits set
// is returned masked together with errHostBits.
func parseEndpoint(s string, isFrom bool) (Endpoint, error) {
	syntax := errEndpointTo
	if isFrom {
		syntax = errEndpointFrom
	}
	switch s {
	case "any":
		return Endpoint{Kind: EndpointAny}, nil
	case "gateway":
		if isFrom {
			return Endpoint{}, errors.New(`"gateway" cannot be a source; it is only valid in to`)
		}
		return Endpoint{Kind: EndpointGateway}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: %s", s, syntax)
	}
	if name == "" {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: missing name after %q", s, kind+":")
	}
	switch kind {
	case "device":
		return Endpoint{Kind: EndpointDevice, Name: name}, nil
	case "group":
		return Endpoint{Kind: EndpointGroup, Name: name}, nil
	case "zone":
		return Endpoint{Kind: EndpointZone, Name: name}, nil
	case "net":
		p, err := parsePrefix(name)
		if err != nil && !errors.Is(err, errHostBits) {
			return Endpoint{}, err
		}
		return Endpoint{Kind: EndpointNet, Prefix: p}, err
	}
	return Endpoint{}, fmt.Errorf("bad endpoint %q: %s", s, syntax)
}

func (t table) endpoint(key string) (Endpoint, bool) {
	s, pos, ok := t.str(key)
	if !ok {
		return Endpoint{Pos: pos}, false
	}
	e, err := parseEndpoint(s, key == "from")
	e.Pos = pos
	switch {
	case errors.Is(err, errHostBits):
		t.warnf(pos, "network %q has host bits set; using %s", strings.TrimPrefix(s, "net:"), e.Prefix)
	case err != nil:
		t.errorf(pos, "%v", err)
		return e, false
	}
	return e, true
}

// size reads a byte count written as a TOML integer or as a string with a
// unit.
func (t table) size(key string) (int64, bool) {
	switch v := t.value(key).(type) {
	case nil:
		return 0, false
	case int64:
		if v <= 0 {
			t.errorf(t.valuePos(key), "malformed size %d: must be more than 0 bytes", v)
			return 0, false
		}
		return v, true
	case string:
		n, err := parseSize(v)
		if err != nil {
			t.errorf(t.valuePos(key), "%v", err)
			return 0, false
		}
		return n, true
	default:
		t.wrongType(key, "size (string or integer)", t.field(key))
		return 0, false
	}
}

// budget reads { amount = SIZE, per = DURATION }.
func (t table) budget(key string) *Budget {
	bt, ok := t.table(key)
	if !ok {
		return nil
	}
	bt.checkKeys("amount", "per")
	bt.required("amount", "per")
	amount, okAmount := bt.size("amount")
	s, per, okPer := bt.str("per")
	if !okAmount || !okPer {
		return nil
	}
	d, err := parseDuration(s)
	if err != nil {
		bt.errorf(per, "%v", err)
		return nil
	}
	return &Budget{Bytes: amount, Per: d}
}

// nonEmpty reports an empty list: leaving a key out means "unconstrained",
// and an empty list more likely hides a mistake than means that.
func (t table) nonEmpty(key string, list []positioned, ok bool) {
	if ok && len(list) == 0 {
		t.errorf(t.valuePos(key), "%s is empty; leave it out for no constraint", key)
	}
}

func (b *builder) allow(t table) {
	t.checkKeys(withAppKeys("name", "from", "to", "services", "hours", "days", "packet_size",
		"max_flow_bytes", "max_device_bytes", "min_device_bytes", "max_new_flows",
		"max_peers", "max_ports", "fanout_window")...)
	a := Allow{Pos: t.Pos()}
	var namePos Pos
	a.Name, namePos = t.nameOf("allow rule")
	t.required("from", "to")
	a.From, _ = t.endpoint("from")
	a.To, _ = t.endpoint("to")

	services, ok := t.strings("services")
	t.nonEmpty("services", services, ok)
	for _, s := range services {
		if svc, err := parseService(s.s); err != nil {
			t.errorf(s.pos, "%v", err)
		} else {
			a.Services = append(a.Services, svc)
		}
	}
	hours, ok := t.strings("hours")
	t.nonEmpty("hours", hours, ok)
	for _, h := range hours {
		if r, err := parseTimeRange(h.s); err != nil {
			t.errorf(h.pos, "%v", err)
		} else {
			a.Hours = append(a.Hours, r)
		}
	}
	days, ok := t.strings("days")
	t.nonEmpty("days", days, ok)
	for _, d := range days {
		if w, err := parseDays(d.s); err != nil {
			t.errorf(d.pos, "%v", err)
		} else {
			a.Days |= w
		}
	}
	if s, pos, ok := t.str("packet_size"); ok {
		if r, err := parsePacketSize(s); err != nil {
			t.errorf(pos, "%v", err)
		} else {
			a.PacketSize = &r
		}
	}
	a.MaxFlowBytes, _ = t.size("max_flow_bytes")
	a.MaxDeviceBytes = t.budget("max_device_bytes")
	a.MinDeviceBytes = t.budget("min_device_bytes")
	if lo, hi := a.MinDeviceBytes, a.MaxDeviceBytes; lo != nil && hi != nil && lo.Per == hi.Per && lo.Bytes > hi.Bytes {
		t.errorf(t.valuePos("min_device_bytes"), "min_device_bytes %d per %v is more than max_device_bytes %d per %v: no device can satisfy both",
			lo.Bytes, lo.Per, hi.Bytes, hi.Per)
	}
	if s, pos, ok := t.str("max_new_flows"); ok {
		if r, err := parseRate(s); err != nil {
			t.errorf(pos, "%v", err)
		} else {
			a.MaxNewFlows = r
		}
	}
	a.FanOut = t.fanOut()
	a.App = t.app()
	b.cfg.Allows = append(b.cfg.Allows, a)
	b.src.allowName = append(b.src.allowName, namePos)
}

// fanOut reads max_peers, max_ports and fanout_window. The bounds are
// small on purpose: each device under the rule keeps a table of the peers
// and ports it reached, sized by them.
func (t table) fanOut() FanOut {
	f := FanOut{Window: DefaultFanOutWindow}
	f.MaxPeers = t.fanOutBound("max_peers", MaxFanOutPeers)
	f.MaxPorts = t.fanOutBound("max_ports", MaxFanOutPorts)
	if f.MaxPeers > 0 && f.MaxPorts > 0 && f.MaxPeers*f.MaxPorts > MaxFanOutEntries {
		t.errorf(t.valuePos("max_ports"), "max_peers %d × max_ports %d is more than %d peer and port pairs a device can be followed by; lower one of them",
			f.MaxPeers, f.MaxPorts, MaxFanOutEntries)
	}
	if s, pos, ok := t.str("fanout_window"); ok {
		d, err := parseDuration(s)
		switch {
		case err != nil:
			t.errorf(pos, "%v", err)
		case !f.Set():
			t.errorf(pos, "fanout_window without max_peers or max_ports bounds nothing")
		default:
			f.Window = d
		}
	}
	if !f.Set() {
		return FanOut{}
	}
	return f
}

func (t table) fanOutBound(key string, most int64) int {
	n, pos, ok := t.integer(key)
	if !ok {
		return 0
	}
	if n < 1 || n > most {
		t.errorf(pos, "%s = %d: want 1 to %d", key, n, most)
		return 0
	}
	return int(n)
}
