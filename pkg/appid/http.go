package appid

// HTTPConfig is an HTTP rule: the hosts and methods a request may name.
type HTTPConfig struct {
	// Hosts are the allowed Host names; nil allows any.
	Hosts *NameSet
	// Methods are the allowed methods; empty allows any.
	Methods []string
}

// HTTPChecker identifies HTTP/1.x by the first request's line and headers
// and checks its Host and method.
type HTTPChecker struct{ cfg HTTPConfig }

// NewHTTP returns the checker for cfg.
func NewHTTP(cfg HTTPConfig) *HTTPChecker { return &HTTPChecker{cfg: cfg} }

// Proto returns HTTP.
func (*HTTPChecker) Proto() Proto { return HTTP }

// Stream returns true: HTTP runs over TCP.
func (*HTTPChecker) Stream() bool { return true }

// Lifelong returns false: the first request decides the flow.
func (*HTTPChecker) Lifelong() bool { return false }

// maxMethod bounds a request method's length.
const maxMethod = 16

// Check judges the first request at the start of the client's stream:
// its request line and headers, up to the blank line that ends them.
func (c *HTTPChecker) Check(data []byte) Verdict {
	line, rest, ok := cutLine(data)
	if !ok {
		if v := checkMethodPrefix(data); v.Outcome != More {
			return v
		}
		return more
	}
	method, target, ok := requestLine(line)
	if !ok {
		return mismatch("not an HTTP/1 request line")
	}
	host, hasHost, v := findHost(rest)
	if v.Outcome != Pass {
		return v
	}
	v = Verdict{Outcome: Pass, Name: host, Code: -1}
	if !c.methodAllowed(method) {
		v.Outcome, v.Reason = Deny, "method not allowed"
		return v
	}
	// A request in absolute form ("GET http://h/ HTTP/1.1") or a CONNECT
	// names its host in the target, which the server (or proxy) goes by
	// rather than Host (RFC 9112 §3.2.2): both must be allowed.
	if th, ok := targetHost(method, target); ok {
		if c.cfg.Hosts != nil && !c.cfg.Hosts.Match(stripPort(th)) {
			v.Outcome, v.Reason, v.Name = Deny, "host not allowed", th
			return v
		}
		if !hasHost {
			v.Name = th
		}
	}
	if c.cfg.Hosts == nil {
		return v
	}
	if !hasHost {
		v.Outcome, v.Reason = Deny, "no Host header"
		return v
	}
	if !c.cfg.Hosts.Match(stripPort(host)) {
		v.Outcome, v.Reason = Deny, "host not allowed"
	}
	return v
}

func (c *HTTPChecker) methodAllowed(m []byte) bool {
	if len(c.cfg.Methods) == 0 {
		return true
	}
	for _, a := range c.cfg.Methods {
		if a == string(m) {
			return true
		}
	}
	return false
}

// checkMethodPrefix tells early that a stream is not HTTP: the bytes
// before the first line ends must start with a method token and a space.
func checkMethodPrefix(data []byte) Verdict {
	for i, ch := range data {
		switch {
		case ch >= 'A' && ch <= 'Z' || ch == '-' || ch == '_':
			if i >= maxMethod {
				return mismatch("not an HTTP method")
			}
		case ch == ' ' && i > 0:
			return more
		default:
			return mismatch("not an HTTP method")
		}
	}
	return more
}

// cutLine splits off the first line (ended by CRLF or a bare LF).
func cutLine(b []byte) (line, rest []byte, ok bool) {
	for i, ch := range b {
		if ch == '\n' {
			line = b[:i]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, b[i+1:], true
		}
	}
	return nil, b, false
}

// requestLine splits "METHOD SP target SP HTTP/1.x".
func requestLine(line []byte) (method, target []byte, ok bool) {
	sp1 := indexByte(line, ' ')
	if sp1 < 1 || sp1 > maxMethod {
		return nil, nil, false
	}
	method = line[:sp1]
	for _, ch := range method {
		if !(ch >= 'A' && ch <= 'Z' || ch == '-' || ch == '_') {
			return nil, nil, false
		}
	}
	rest := line[sp1+1:]
	sp2 := indexByte(rest, ' ')
	if sp2 < 1 {
		return nil, nil, false
	}
	target, version := rest[:sp2], rest[sp2+1:]
	if string(version) != "HTTP/1.1" && string(version) != "HTTP/1.0" && string(version) != "HTTP/2.0" {
		return nil, nil, false
	}
	for _, ch := range target {
		if ch <= ' ' || ch == 0x7f {
			return nil, nil, false
		}
	}
	return method, target, true
}

// findHost reads the header lines up to the blank line and returns the
// Host header's value. Two Host headers, a header line without a colon or
// with space before it, and folded lines are what servers must refuse
// (RFC 9112 §3.2, §5.1, §5.2): a mismatch, for the check and the server
// could read different hosts.
func findHost(b []byte) (host []byte, found bool, v Verdict) {
	for {
		line, rest, ok := cutLine(b)
		if !ok {
			return nil, false, more
		}
		if len(line) == 0 {
			return host, found, Verdict{Outcome: Pass, Code: -1}
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, false, mismatch("folded HTTP header")
		}
		colon := indexByte(line, ':')
		if colon < 1 {
			return nil, false, mismatch("bad HTTP header line")
		}
		name := line[:colon]
		for _, ch := range name {
			if ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '(' || ch == ')' || ch == ',' || ch == '/' || ch == ';' || ch == '<' || ch == '>' || ch == '=' || ch == '?' || ch == '@' || ch == '[' || ch == '\\' || ch == ']' || ch == '{' || ch == '}' {
				return nil, false, mismatch("bad HTTP header name")
			}
		}
		if len(name) == 4 && (name[0]|0x20) == 'h' && (name[1]|0x20) == 'o' && (name[2]|0x20) == 's' && (name[3]|0x20) == 't' {
			if found {
				return nil, false, mismatch("two Host headers")
			}
			found = true
			host = trimOWS(line[colon+1:])
		}
		b = rest
	}
}

// targetHost returns the host of an absolute-form or authority-form target.
func targetHost(method, target []byte) ([]byte, bool) {
	if string(method) == "CONNECT" {
		return target, true
	}
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(target) > len(scheme) && equalFold(target[:len(scheme)], scheme) {
			auth := target[len(scheme):]
			for i, ch := range auth {
				if ch == '/' || ch == '?' || ch == '#' {
					auth = auth[:i]
					break
				}
			}
			if at := lastIndexByte(auth, '@'); at >= 0 {
				auth = auth[at+1:]
			}
			return auth, true
		}
	}
	return nil, false
}

// stripPort drops ":port" from a host (not from an IPv6 literal's inside).
func stripPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if end := indexByte(h, ']'); end > 0 {
			return h[1:end]
		}
		return h
	}
	if i := lastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func equalFold(b []byte, s string) bool {
	for i := range b {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

var _ Checker = (*HTTPChecker)(nil)
