package appid

import (
	"fmt"
	"strings"
)

// CoAPConstraint is what a rule allows a CoAP client to ask.
type CoAPConstraint struct {
	// Methods are the allowed request methods ("GET", "POST", "PUT",
	// "DELETE", "FETCH", "PATCH", "iPATCH"). None: any method.
	Methods []string
	// Paths are the allowed request paths, matched segment by segment:
	// "/sensors/temp" exactly; '*' within a segment matches any run of
	// bytes of that one segment ("/sensors/*", "/fw/v*"); a last segment
	// "**" matches any number of further segments, none included
	// ("/sensors/**"). "/" is the request with no Uri-Path. None: any path.
	Paths []string
}

// CoAPChecker checks CoAP over UDP (RFC 7252) requests, one datagram per
// call, against a CoAPConstraint.
type CoAPChecker struct {
	methods uint8 // bit per method code 1..7
	paths   []coapPattern
}

var _ Checker = (*CoAPChecker)(nil)

// coapPattern is an allowed path split into segments; rest marks a final
// "**".
type coapPattern struct {
	segs []string
	rest bool
}

// Reasons a CoAP datagram is refused.
const (
	reasonNotCoAP        = "not CoAP"
	reasonCoAPMethod     = "method not allowed"
	reasonCoAPUnknown    = "unknown method"
	reasonCoAPPath       = "path not allowed"
	reasonCoAPDotSegment = "dot segment in path"
	reasonCoAPProxy      = "proxy request"
)

// ValidCoAPPath says what is wrong with a path pattern, "" when nothing.
func ValidCoAPPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return `does not start with "/"`
	}
	if p == "/" {
		return ""
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "." || s == "..":
			return "has a dot segment (requests with one are refused)"
		case strings.Contains(s, "**") && (s != "**" || i != len(segs)-1):
			return `has "**" other than as its whole last segment`
		}
	}
	return ""
}

// NewCoAPChecker compiles c.
func NewCoAPChecker(c CoAPConstraint) (*CoAPChecker, error) {
	k := &CoAPChecker{}
	for _, m := range c.Methods {
		code, ok := CoAPMethod(m)
		if !ok {
			return nil, fmt.Errorf("coap: %q is not a CoAP method", m)
		}
		k.methods |= 1 << (code - 1)
	}
	if len(c.Methods) == 0 {
		k.methods = 0x7f
	}
	for _, p := range c.Paths {
		if msg := ValidCoAPPath(p); msg != "" {
			return nil, fmt.Errorf("coap: path %q %s", p, msg)
		}
		pat := coapPattern{}
		if p != "/" {
			pat.segs = strings.Split(p[1:], "/")
		}
		if n := len(pat.segs); n > 0 && pat.segs[n-1] == "**" {
			pat.segs, pat.rest = pat.segs[:n-1], true
		}
		k.paths = append(k.paths, pat)
	}
	return k, nil
}

// Proto is CoAP.
func (c *CoAPChecker) Proto() Proto { return CoAP }

// Stream is false: one CoAP message per UDP datagram.
func (c *CoAPChecker) Stream() bool { return false }

// Lifelong is true: every request of the flow is a datagram of its own,
// and each must be judged.
func (c *CoAPChecker) Lifelong() bool { return true }

// Check judges one datagram's payload. Empty messages (the client's ACK,
// RST and ping) and responses pass; a request passes when its method and
// path are allowed; anything else is refused.
func (c *CoAPChecker) Check(data []byte) Verdict {
	m, err := ParseCoAP(data)
	if err != nil {
		return Verdict{Outcome: Mismatch, Reason: reasonNotCoAP, Code: -1}
	}
	code := int(m.Code)
	switch class := m.Code >> 5; {
	case m.Code == CoAPEmpty:
		return Verdict{Outcome: Pass, Code: code}
	case class == 2 || class == 4 || class == 5:
		// The client side answering the server's requests, over the same
		// flow (LwM2M servers read and observe their devices so). A rule
		// says what the device may ask the server; a response asks
		// nothing. What it carries is no more than a GET's Uri-Query
		// could.
		return Verdict{Outcome: Pass, Code: code}
	case class != 0:
		return Verdict{Outcome: Mismatch, Reason: reasonNotCoAP, Code: code}
	case m.Code > CoAPIPatch:
		return Verdict{Outcome: Deny, Reason: reasonCoAPUnknown, Code: code}
	case c.methods&(1<<(m.Code-1)) == 0:
		return Verdict{Outcome: Deny, Reason: reasonCoAPMethod, Code: code}
	}
	it := m.Options()
	for num, v, ok := it.Next(); ok; num, v, ok = it.Next() {
		switch {
		case num == CoAPOptionProxyUri || num == CoAPOptionProxyScheme:
			// A proxy request names its target in a URI the path
			// patterns never see.
			return Verdict{Outcome: Deny, Reason: reasonCoAPProxy, Code: code}
		case num == CoAPOptionUriPath && coapDotSegment(v):
			// A server that resolves dot segments would serve another
			// path than the one matched. Option values are not
			// percent-encoded (RFC 7252 §6.4), but a server that decodes
			// them anyway would read "%2e%2e" as "..": refused too.
			return Verdict{Outcome: Deny, Reason: reasonCoAPDotSegment, Code: code}
		}
	}
	if !c.pathAllowed(&m) {
		return Verdict{Outcome: Deny, Reason: reasonCoAPPath, Code: code}
	}
	return Verdict{Outcome: Pass, Code: code}
}

// AppendName appends the path of the request in data to dst ("/" for
// none), for a caller that keeps the name a verdict is about: the path is
// spread over options and has no contiguous bytes for Verdict.Name.
func (c *CoAPChecker) AppendName(dst, data []byte) []byte {
	m, err := ParseCoAP(data)
	if err != nil || !m.IsRequest() {
		return dst
	}
	return m.AppendPath(dst)
}

func (c *CoAPChecker) pathAllowed(m *CoAPMessage) bool {
	if len(c.paths) == 0 {
		return true
	}
	for i := range c.paths {
		if c.paths[i].match(m) {
			return true
		}
	}
	return false
}

// match compares the Uri-Path options one by one with the pattern's
// segments. A '/' inside an option is part of its segment ("a%2Fb"), so
// matching segments, not a joined string, keeps "/sensors/*" from
// admitting the one segment "sensors/x/../../admin".
func (p *coapPattern) match(m *CoAPMessage) bool {
	it := m.Options()
	i := 0
	for num, v, ok := it.Next(); ok; num, v, ok = it.Next() {
		if num != CoAPOptionUriPath {
			continue
		}
		if i == len(p.segs) {
			return p.rest
		}
		if !starMatch(p.segs[i], v) {
			return false
		}
		i++
	}
	return i == len(p.segs)
}

// coapDotSegment reports whether a path segment is "." or "..", written
// plainly or with '.' as "%2e" / "%2E".
func coapDotSegment(v []byte) bool {
	dots := 0
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '.':
		case v[i] == '%' && i+2 < len(v) && v[i+1] == '2' && (v[i+2] == 'e' || v[i+2] == 'E'):
			i += 2
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}
