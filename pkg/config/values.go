package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file parses the small languages written inside TOML strings:
// services, time windows, days, sizes, rates and durations. Each parser
// returns an error whose text is the whole message; the caller adds the
// position.

// IP protocol numbers with names in the policy language.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// protocolNames are the IP protocols the policy language names.
var protocolNames = map[string]uint8{"tcp": protoTCP, "udp": protoUDP, "icmp": protoICMP, "icmpv6": protoICMPv6}

// ParseProtocol reads an IP protocol as the policy language writes it:
// "tcp", "udp", "icmp", "icmpv6", or a number 1-255 ("proto/N" in a
// service, or plain "N").
func ParseProtocol(s string) (uint8, error) {
	if p, ok := protocolNames[s]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "proto/"), 10, 8)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("unknown protocol %q: want tcp, udp, icmp, icmpv6 or a number 1-255", s)
	}
	return uint8(n), nil
}

const errServiceSyntax = `want "any", "tcp", "udp", "icmp", "icmpv6", "tcp/PORT", "udp/LO-HI" or "proto/N"`

// parseService parses one entry of an allow rule's services.
func parseService(s string) (Service, error) {
	name, arg, hasArg := strings.Cut(s, "/")
	switch name {
	case "any":
		if hasArg {
			return Service{}, fmt.Errorf("bad service %q: %s", s, errServiceSyntax)
		}
		return Service{}, nil
	case "icmp", "icmpv6":
		if hasArg {
			return Service{}, fmt.Errorf("bad service %q: %s has no ports", s, name)
		}
		return Service{Proto: protocolNames[name]}, nil
	case "tcp", "udp":
		proto := protocolNames[name]
		if !hasArg {
			return Service{Proto: proto, PortLo: 0, PortHi: math.MaxUint16}, nil
		}
		lo, hi, err := parsePortRange(arg)
		if err != nil {
			return Service{}, fmt.Errorf("bad port range in service %q: %v", s, err)
		}
		return Service{Proto: proto, PortLo: lo, PortHi: hi}, nil
	case "proto":
		n, err := strconv.ParseUint(arg, 10, 8)
		if !hasArg || err != nil || n == 0 {
			return Service{}, fmt.Errorf("bad service %q: protocol number must be 1-255", s)
		}
		// proto/6 and proto/17 mean the same as tcp and udp; spell them
		// the same way so that duplicate and shadow checks see it.
		if n == protoTCP || n == protoUDP {
			return Service{Proto: uint8(n), PortLo: 0, PortHi: math.MaxUint16}, nil
		}
		return Service{Proto: uint8(n)}, nil
	}
	return Service{}, fmt.Errorf("bad service %q: %s", s, errServiceSyntax)
}

// hasPorts reports whether the protocol has the port numbers a Service's
// range refers to.
func hasPorts(proto uint8) bool { return proto == protoTCP || proto == protoUDP }

// parsePortRange parses "PORT" or "LO-HI".
func parsePortRange(s string) (lo, hi uint16, err error) {
	los, his, isRange := strings.Cut(s, "-")
	if !isRange {
		his = los
	}
	l, err := parsePort(los)
	if err != nil {
		return 0, 0, err
	}
	h, err := parsePort(his)
	if err != nil {
		return 0, 0, err
	}
	if l > h {
		return 0, 0, fmt.Errorf("%d-%d starts above its end", l, h)
	}
	return l, h, nil
}

func parsePort(s string) (uint16, error) {
	if !allDigits(s) {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %s is above 65535", s)
	}
	return uint16(n), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

const minutesPerDay = 24 * 60

// parseTimeRange parses "HH:MM-HH:MM". 24:00 may end a window; a window
// that starts where it ends is refused because it is unclear whether the
// author meant never or always.
func parseTimeRange(s string) (TimeRange, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return TimeRange{}, fmt.Errorf("malformed time window %q: want HH:MM-HH:MM", s)
	}
	start, ok1 := parseClock(from)
	end, ok2 := parseClock(to)
	if !ok1 || !ok2 {
		return TimeRange{}, fmt.Errorf("malformed time window %q: want HH:MM-HH:MM", s)
	}
	if start == minutesPerDay {
		return TimeRange{}, fmt.Errorf("malformed time window %q: 24:00 can only end a window", s)
	}
	if start == end {
		return TimeRange{}, fmt.Errorf("impossible time window %q: it starts where it ends", s)
	}
	return TimeRange{Start: start, End: end}, nil
}

// parseClock parses HH:MM (two digits each) into minutes since midnight,
// allowing 24:00.
func parseClock(s string) (int, bool) {
	if len(s) != len("15:04") || s[2] != ':' || !allDigits(s[:2]) || !allDigits(s[3:]) {
		return 0, false
	}
	h, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[3:])
	if m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, false
	}
	return h*60 + m, true
}

var dayNames = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDay reads a day of the week as the policy language writes it: mon,
// tue, wed, thu, fri, sat or sun.
func ParseDay(s string) (time.Weekday, error) {
	if d, ok := parseDay(s); ok {
		return d, nil
	}
	return 0, fmt.Errorf("unknown day %q: want mon, tue, wed, thu, fri, sat or sun", s)
}

func parseDay(s string) (time.Weekday, bool) {
	for i, d := range dayNames {
		if s == d {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// ParseInstant reads a moment the way the commands take one (explain
// --at): RFC 3339, "2006-01-02 15:04", a clock "15:04" (today) or a day and
// a clock "mon 15:04" (the next such day, today included). Clocks and days
// are written as in the policy's time windows; all but RFC 3339 are in
// now's location.
func ParseInstant(s string, now time.Time) (time.Time, error) {
	loc := now.Location()
	if s == "" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, loc); err == nil {
		return t, nil
	}
	day, clock, hasDay := strings.Cut(s, " ")
	if !hasDay {
		clock = day
	}
	minutes, ok := parseClock(clock)
	if !ok {
		return time.Time{}, errors.New(`want RFC 3339, "2006-01-02 15:04", "15:04" or "mon 15:04"`)
	}
	date := now
	if hasDay {
		wd, err := ParseDay(strings.ToLower(day))
		if err != nil {
			return time.Time{}, err
		}
		date = now.AddDate(0, 0, (int(wd)-int(now.Weekday())+7)%7)
	}
	// Minutes past midnight, so that 24:00 is the next day's midnight.
	return time.Date(date.Year(), date.Month(), date.Day(), 0, minutes, 0, 0, loc), nil
}

// parseDays parses "mon" or a range "mon-fri". A range may wrap around the
// week's end: "fri-mon" is fri, sat, sun and mon.
func parseDays(s string) (Weekdays, error) {
	from, to, isRange := strings.Cut(s, "-")
	if !isRange {
		to = from
	}
	first, ok1 := parseDay(from)
	last, ok2 := parseDay(to)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("bad day %q: want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri", s)
	}
	var w Weekdays
	for d := first; ; d = (d + 1) % 7 {
		w |= 1 << uint(d)
		if d == last {
			return w, nil
		}
	}
}

// parsePacketSize parses "MIN-MAX". 20 bytes is the smallest IPv4 header,
// so a smaller bound can only be a mistake.
func parsePacketSize(s string) (SizeRange, error) {
	los, his, ok := strings.Cut(s, "-")
	if !ok || !allDigits(los) || !allDigits(his) {
		return SizeRange{}, fmt.Errorf("malformed packet size %q: want MIN-MAX in bytes, such as 60-1500", s)
	}
	lo, err1 := strconv.Atoi(los)
	hi, err2 := strconv.Atoi(his)
	if err1 != nil || err2 != nil || lo < 20 || lo > hi || hi > math.MaxUint16 {
		return SizeRange{}, fmt.Errorf("bad packet size %q: need 20 <= MIN <= MAX <= 65535", s)
	}
	return SizeRange{Min: lo, Max: hi}, nil
}

var sizeUnits = []struct {
	name  string
	bytes int64
}{
	// Longest names first, so that "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

const errSizeSyntax = "want bytes as an integer, or a number with unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, such as 500MB"

// parseSize parses a byte count such as "500MB", "1.5GiB" or "4096". The
// result must be a positive whole number of bytes: zero would mean
// "unconstrained" and silently drop the bound the author wrote.
func parseSize(s string) (int64, error) {
	num, unit := s, int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.name); ok {
			num, unit = rest, u.bytes
			break
		}
	}
	whole, frac, hasFrac := strings.Cut(num, ".")
	if !allDigits(whole) || hasFrac && !allDigits(frac) {
		return 0, fmt.Errorf("malformed size %q: %s", s, errSizeSyntax)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("malformed size %q: %s", s, errSizeSyntax)
	}
	r.Mul(r, new(big.Rat).SetInt64(unit))
	switch {
	case !r.IsInt():
		return 0, fmt.Errorf("malformed size %q: not a whole number of bytes", s)
	case r.Sign() <= 0:
		return 0, fmt.Errorf("malformed size %q: must be more than 0 bytes", s)
	case !r.Num().IsInt64():
		return 0, fmt.Errorf("malformed size %q: too large", s)
	}
	return r.Num().Int64(), nil
}

const errRateSyntax = "want COUNT/s, COUNT/m, COUNT/h or COUNT/DURATION, such as 10/s or 100/10s"

// parseRate parses "N/s", "N/m", "N/h" or "N/DURATION".
func parseRate(s string) (Rate, error) {
	count, per, ok := strings.Cut(s, "/")
	if !ok || !allDigits(count) {
		return Rate{}, fmt.Errorf("malformed rate %q: %s", s, errRateSyntax)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return Rate{}, fmt.Errorf("malformed rate %q: count must be 1-%d", s, math.MaxInt32)
	}
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = parseDuration(per)
		if err != nil {
			return Rate{}, fmt.Errorf("malformed rate %q: %s", s, errRateSyntax)
		}
	}
	return Rate{Count: n, Per: d}, nil
}

// parseDuration parses a positive Go duration such as "24h" or "90s".
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("malformed duration %q: want a Go duration such as 90s, 1h or 24h", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("malformed duration %q: must be more than zero", s)
	}
	return d, nil
}

// parseMAC parses an EUI-48 address. Group (multicast and broadcast)
// addresses are refused: no single device sends from one.
func parseMAC(s string) ([6]byte, error) {
	var mac [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != len(mac) {
		return mac, fmt.Errorf("bad MAC address %q: want six hex bytes such as 02:00:00:00:00:11", s)
	}
	if hw[0]&1 != 0 {
		return mac, fmt.Errorf("bad MAC address %q: a multicast address cannot identify a device", s)
	}
	copy(mac[:], hw)
	return mac, nil
}

// parseIP parses a device address. Zoned IPv6 addresses are refused: the
// zone is an interface, which belongs in the zone table, not in an address.
func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("bad IP address %q", s)
	}
	return ip.Unmap(), nil
}

// errHostBits marks a prefix that parsed but had host bits set; the caller
// warns and uses the masked prefix.
var errHostBits = errors.New("host bits set")

// parsePrefix parses a CIDR. A prefix with host bits set is returned masked
// together with errHostBits.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q: want an address and prefix length such as 10.77.0.0/24", s)
	}
	if m := p.Masked(); m != p {
		return m, errHostBits
	}
	return p, nil
}
