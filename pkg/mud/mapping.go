package mud

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Mapping says what the MUD abstractions are on this network. Keys are
// Abstraction.String() forms: "local-networks", "my-controller",
// "same-manufacturer", "controller:URI", "manufacturer:NAME", "model:URI";
// values are endpoints as an [[allow]] rule writes them ("zone:lan",
// "device:hub", "group:bulbs", "net:10.0.0.0/24").
type Mapping map[string]string

// Set adds one KEY=ENDPOINT pair, as the command line and a mapping file
// write them. A later pair for the same key is an error: which one was
// meant cannot be known.
func (m Mapping) Set(pair string) error {
	key, ep, ok := strings.Cut(pair, "=")
	// A controller URI may hold '=' (a query); the endpoint never does.
	if i := strings.LastIndex(pair, "="); ok && i > len(key) {
		key, ep = pair[:i], pair[i+1:]
	}
	key, ep = strings.TrimSpace(key), strings.TrimSpace(ep)
	if !ok || key == "" || ep == "" {
		return fmt.Errorf("mapping %q: want ABSTRACTION=ENDPOINT, e.g. my-controller=device:hub", clip(pair))
	}
	if err := checkMappingKey(key); err != nil {
		return fmt.Errorf("mapping %q: %v", clip(pair), err)
	}
	if err := checkEndpoint(ep); err != nil {
		return fmt.Errorf("mapping %q: %v", clip(pair), err)
	}
	if old, dup := m[key]; dup {
		return fmt.Errorf("mapping for %s given twice (%s and %s)", clip(key), old, ep)
	}
	m[key] = ep
	return nil
}

// ReadMapping reads a mapping file: one KEY=ENDPOINT a line; blank lines
// and lines starting with '#' are skipped. Errors name the line.
func (m Mapping) ReadMapping(name string, r io.Reader) error {
	sc := bufio.NewScanner(io.LimitReader(r, MaxFileSize))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if err := m.Set(s); err != nil {
			return fmt.Errorf("%s:%d: %v", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

func checkMappingKey(key string) error {
	kind, value, hasValue := strings.Cut(key, ":")
	switch kind {
	case "local-networks", "same-manufacturer", "my-controller":
		if hasValue {
			return fmt.Errorf("%s takes no value", kind)
		}
	case "controller", "manufacturer", "model":
		if value == "" || !printableASCII(value) {
			return fmt.Errorf("%s needs its URI or name: %s:VALUE", kind, kind)
		}
	default:
		return fmt.Errorf("unknown abstraction %q (want local-networks, same-manufacturer, my-controller, controller:URI, manufacturer:NAME or model:URI)", clip(kind))
	}
	return nil
}

// checkEndpoint accepts the endpoints an abstraction may stand for. "any"
// is refused: an abstraction names part of the network, and mapping one to
// everything is a widening no reviewer should get by a typo.
func checkEndpoint(ep string) error {
	kind, name, ok := strings.Cut(ep, ":")
	if ep == "gateway" {
		return nil
	}
	if !ok || name == "" {
		return fmt.Errorf("endpoint %q: want zone:NAME, group:NAME, device:NAME, net:CIDR or gateway", clip(ep))
	}
	switch kind {
	case "zone", "group", "device":
		if !validName(name) {
			return fmt.Errorf("endpoint %q: a name is letters, digits, '-', '_' and '.'", clip(ep))
		}
	case "net":
		if _, err := netip.ParsePrefix(name); err != nil {
			return fmt.Errorf("endpoint %q: %v", clip(ep), err)
		}
	default:
		return fmt.Errorf("endpoint %q: want zone:NAME, group:NAME, device:NAME, net:CIDR or gateway", clip(ep))
	}
	return nil
}

// validName is the policy's rule for names (pkg/config validName): they
// appear unquoted in endpoints, logs and alerts.
func validName(s string) bool {
	if s == "" || !isAlnum(s[0]) || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// slug turns what a MUD file says (a model name, a URI) into a policy
// name: lower case letters and digits joined by '-', at most 40
// characters, or "" when nothing is left.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s) && b.Len() < 40; i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if isAlnum(c) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteByte(c)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}
