package mud

import (
	"errors"
	"net/netip"
	"strings"
)

// IP protocol numbers MUD files use.
const (
	protoAny    = -1
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// ACE is one access-control entry: what it matches and what it does.
type ACE struct {
	Name string
	// Path is where the entry is in the file.
	Path string
	// Action is "accept", or what the file asked instead ("drop",
	// "reject", "deny").
	Action string
	// Family is 4 or 6 when the entry matched on an IPv4 or IPv6 header, 0
	// when it names no IP version.
	Family uint8
	// Proto is the IP protocol, protoAny (-1) for any.
	Proto int
	// SrcDNS and DstDNS are ietf-acldns:src-dnsname and dst-dnsname.
	SrcDNS, DstDNS string
	// SrcNet and DstNet are the source and destination networks.
	SrcNet, DstNet netip.Prefix
	// SrcPort and DstPort are the TCP or UDP port matches.
	SrcPort, DstPort PortRange
	// Initiated is ietf-mud:direction-initiated, when HasInitiated;
	// InitiatedIn is the match it was written in ("tcp", "udp", ...).
	Initiated    Direction
	HasInitiated bool
	InitiatedIn  string
	// Abstractions are the ietf-mud matches (local-networks, controller,
	// ...), in file order.
	Abstractions []Abstraction
	// Unsupported lists the matches picoseg cannot express, each as its
	// path in the file: leaving one out would widen the rule.
	Unsupported []string
}

// PortRange is a port match; Set is false for any port.
type PortRange struct {
	Lo, Hi uint16
	Set    bool
}

// Abstraction is one MUD abstraction: Kind is "local-networks",
// "same-manufacturer", "my-controller" (no Value), or "manufacturer",
// "controller", "model" with the name or URI they give.
type Abstraction struct {
	Kind, Value string
}

// String returns the abstraction as a mapping key: "my-controller",
// "controller:URI".
func (a Abstraction) String() string {
	if a.Value == "" {
		return a.Kind
	}
	return a.Kind + ":" + a.Value
}

// aceReader collects one entry's matches.
type aceReader struct {
	ace   ACE
	l4    string // "tcp", "udp" or "icmp" when such a match was written
	l4Pth string
}

func readACE(n *node) (ACE, error) {
	obj, err := n.object()
	if err != nil {
		return ACE{}, err
	}
	r := aceReader{ace: ACE{Path: n.path, Proto: protoAny}}
	if nn, _ := firstField(obj, ruleKeys...); nn != nil {
		if r.ace.Name, err = nn.str(); err != nil {
			return ACE{}, err
		}
	}
	if r.ace.Action, err = readAction(obj["actions"], n.path); err != nil {
		return ACE{}, err
	}
	if mn := obj["matches"]; mn != nil {
		m, err := mn.object()
		if err != nil {
			return ACE{}, err
		}
		for _, k := range mn.keys {
			if err := r.match(k, m[k]); err != nil {
				return ACE{}, err
			}
		}
	}
	if err := r.settleProtocol(); err != nil {
		return ACE{}, err
	}
	return r.ace, nil
}

// readAction reads {"forwarding": "accept"} (RFC 8519) or {"permit":
// [null]} / {"deny": [null]} (drafts).
func readAction(n *node, path string) (string, error) {
	if n == nil {
		return "", errorf(path, "entry without actions")
	}
	obj, err := n.object()
	if err != nil {
		return "", err
	}
	if fw := obj["forwarding"]; fw != nil {
		s, err := fw.str()
		if err != nil {
			return "", err
		}
		// identityref values may carry their module's prefix.
		return strings.TrimPrefix(s, "ietf-access-control-list:"), nil
	}
	for _, k := range []string{"permit", "deny"} {
		if a := obj[k]; a != nil {
			if err := a.empty(); err != nil {
				return "", err
			}
			if k == "permit" {
				return "accept", nil
			}
			return k, nil
		}
	}
	return "", errorf(n.path, "no forwarding action")
}

// match reads one member of "matches". The drafts wrote the IP, port and
// MUD matches flat in "matches"; the RFC nests them in ipv4/ipv6,
// tcp/udp/icmp and ietf-mud:mud.
func (r *aceReader) match(key string, n *node) error {
	switch key {
	case "ipv4", "ipv4-acl":
		return r.container(n, 4, r.ipMatch)
	case "ipv6", "ipv6-acl":
		return r.container(n, 6, r.ipMatch)
	case "tcp", "udp", "icmp":
		if r.l4 != "" {
			return errorf(n.path, "a %s match and a %s match in one entry", r.l4, key)
		}
		r.l4, r.l4Pth = key, n.path
		return r.container(n, 0, r.l4Match)
	case "ietf-mud:mud", "mud":
		return r.container(n, 0, r.mudMatch)
	}
	if ok, err := r.ipMatch(key, n); ok || err != nil {
		return err
	}
	if ok, err := r.l4Match(key, n); ok || err != nil {
		return err
	}
	if rest, ok := strings.CutPrefix(key, "ietf-mud:"); ok {
		if ok, err := r.mudMatch(rest, n); ok || err != nil {
			return err
		}
	}
	r.ace.Unsupported = append(r.ace.Unsupported, n.path)
	return nil
}

// container reads an object whose members each is handled by fn; a member
// fn does not know is unsupported.
func (r *aceReader) container(n *node, family uint8, fn func(string, *node) (bool, error)) error {
	m, err := n.object()
	if err != nil {
		return err
	}
	if family != 0 {
		if r.ace.Family != 0 && r.ace.Family != family {
			return errorf(n.path, "an IPv4 and an IPv6 match in one entry")
		}
		r.ace.Family = family
	}
	for _, k := range n.keys {
		ok, err := fn(k, m[k])
		if err != nil {
			return err
		}
		if !ok {
			r.ace.Unsupported = append(r.ace.Unsupported, m[k].path)
		}
	}
	return nil
}

// ipMatch reads an IP header match; ok is false for one it does not know.
func (r *aceReader) ipMatch(key string, n *node) (ok bool, err error) {
	a := &r.ace
	switch key {
	case "protocol":
		p, err := n.integer(0, 255)
		if err != nil {
			return true, err
		}
		a.Proto = int(p)
	case "ietf-acldns:src-dnsname", "ietf-acldns:dst-dnsname":
		s, err := n.str()
		if err != nil {
			return true, err
		}
		if !validDNSName(s) {
			return true, errorf(n.path, "not a DNS name: %q", clip(s))
		}
		if strings.Contains(key, "src") {
			a.SrcDNS = s
		} else {
			a.DstDNS = s
		}
	case "source-ipv4-network", "destination-ipv4-network", "source-ipv6-network", "destination-ipv6-network":
		return true, r.network(key, n)
	default:
		return false, nil
	}
	return true, nil
}

func (r *aceReader) network(key string, n *node) error {
	s, err := n.str()
	if err != nil {
		return err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return errorf(n.path, "not a network: %q", clip(s))
	}
	family := uint8(4)
	if strings.Contains(key, "ipv6") {
		family = 6
	}
	if p.Addr().Is4() != (family == 4) || p.Addr().Zone() != "" {
		return errorf(n.path, "%s is not an IPv%d network", clip(s), family)
	}
	if r.ace.Family != 0 && r.ace.Family != family {
		return errorf(n.path, "an IPv4 and an IPv6 match in one entry")
	}
	r.ace.Family = family
	if strings.HasPrefix(key, "source") {
		r.ace.SrcNet = p.Masked()
	} else {
		r.ace.DstNet = p.Masked()
	}
	return nil
}

// l4Match reads a TCP, UDP or ICMP match; ok is false for one it does not
// know (TCP flags, sequence numbers, ICMP types and codes).
func (r *aceReader) l4Match(key string, n *node) (ok bool, err error) {
	a := &r.ace
	switch key {
	case "source-port", "source-port-range":
		a.SrcPort, ok, err = readPorts(n)
		return ok, err
	case "destination-port", "destination-port-range":
		a.DstPort, ok, err = readPorts(n)
		return ok, err
	case "ietf-mud:direction-initiated", "direction-initiated":
		s, err := n.str()
		if err != nil {
			return true, err
		}
		if a.Initiated, err = parseDirection(s, n.path); err != nil {
			return true, err
		}
		a.HasInitiated, a.InitiatedIn = true, r.l4
		if a.InitiatedIn == "" {
			a.InitiatedIn = "matches"
		}
	default:
		return false, nil
	}
	return true, err
}

// readPorts reads {"operator": "eq", "port": N}, {"lower-port": L,
// "upper-port": H}, or the operators lte and gte. neq is no one range:
// ok is false for it.
func readPorts(n *node) (pr PortRange, ok bool, err error) {
	pr, err = readPortMatch(n)
	if errors.Is(err, errNeq) {
		return PortRange{}, false, nil
	}
	return pr, true, err
}

var errNeq = errors.New("neq")

func readPortMatch(n *node) (PortRange, error) {
	m, err := n.object()
	if err != nil {
		return PortRange{}, err
	}
	port := func(key string) (uint16, error) {
		pn := m[key]
		if pn == nil {
			return 0, errorf(n.path, "no %q", key)
		}
		v, err := pn.integer(0, 65535)
		return uint16(v), err
	}
	if m["lower-port"] != nil || m["upper-port"] != nil {
		lo, err := port("lower-port")
		if err != nil {
			return PortRange{}, err
		}
		hi, err := port("upper-port")
		if err != nil {
			return PortRange{}, err
		}
		if lo > hi {
			return PortRange{}, errorf(n.path, "lower-port %d above upper-port %d", lo, hi)
		}
		return PortRange{Lo: lo, Hi: hi, Set: true}, nil
	}
	p, err := port("port")
	if err != nil {
		return PortRange{}, err
	}
	op := "eq"
	if on := m["operator"]; on != nil {
		if op, err = on.str(); err != nil {
			return PortRange{}, err
		}
	}
	switch op {
	case "eq":
		return PortRange{Lo: p, Hi: p, Set: true}, nil
	case "lte":
		return PortRange{Lo: 0, Hi: p, Set: true}, nil
	case "gte":
		return PortRange{Lo: p, Hi: 65535, Set: true}, nil
	case "neq":
		return PortRange{}, errNeq
	}
	return PortRange{}, errorf(n.path, "unknown port operator %q (want eq, lte, gte or neq)", clip(op))
}

// mudMatch reads an ietf-mud abstraction; ok is false for one it does not
// know.
func (r *aceReader) mudMatch(key string, n *node) (ok bool, err error) {
	switch key {
	case "local-networks", "same-manufacturer", "my-controller":
		if err := n.empty(); err != nil {
			return true, err
		}
		r.ace.Abstractions = append(r.ace.Abstractions, Abstraction{Kind: key})
	case "manufacturer", "controller", "model":
		s, err := n.str()
		if err != nil {
			return true, err
		}
		if s == "" || !printableASCII(s) || len(s) > 255 {
			return true, errorf(n.path, "want a name or URI of printable characters, got %q", clip(s))
		}
		r.ace.Abstractions = append(r.ace.Abstractions, Abstraction{Kind: key, Value: s})
	case "direction-initiated":
		return r.l4Match(key, n)
	default:
		return false, nil
	}
	return true, nil
}

// settleProtocol checks the protocol number against the tcp/udp/icmp
// match and fills it in from the match when the file left it out.
func (r *aceReader) settleProtocol() error {
	a := &r.ace
	want := protoAny
	switch r.l4 {
	case "tcp":
		want = protoTCP
	case "udp":
		want = protoUDP
	case "icmp":
		want = protoICMP
		if a.Family == 6 || a.Proto == protoICMPv6 {
			want = protoICMPv6
		}
	}
	switch {
	case want == protoAny:
	case a.Proto == protoAny:
		a.Proto = want
	case a.Proto != want:
		return errorf(r.l4Pth, "a %s match on protocol %d", r.l4, a.Proto)
	}
	if (a.SrcPort.Set || a.DstPort.Set) && a.Proto != protoTCP && a.Proto != protoUDP {
		return errorf(a.Path, "ports matched without TCP or UDP")
	}
	return nil
}

// validDNSName accepts host names: letters, digits, '-', '_' and '.',
// labels of at most 63 and a name of at most 253 characters.
func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// clip shortens what a file wrote for an error message and makes it safe
// to print: a hostile file must not write control characters to a
// terminal.
func clip(s string) string {
	const most = 64
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < most; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	if len(s) > most {
		b.WriteString("...")
	}
	return b.String()
}
