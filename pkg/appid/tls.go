package appid

// Choice is what a checker does with a case the rule decides either way
// (a ClientHello without a server name, one offering Encrypted ClientHello).
type Choice uint8

const (
	// Refuse denies the case.
	Refuse Choice = iota
	// Admit allows it.
	Admit
)

// TLSConfig is a TLS rule: the server names a ClientHello may ask for.
type TLSConfig struct {
	// Names are the allowed server names; nil allows any.
	Names *NameSet
	// NoSNI decides a ClientHello without a server name, ECH one offering
	// Encrypted ClientHello (extension 0xfe0d), whose outer name is the
	// provider's and whose real name is hidden.
	NoSNI, ECH Choice
}

// TLSChecker identifies TLS by the client's first handshake message, the
// ClientHello, and checks the server name it asks for. The parser is
// written by hand over a fixed buffer rather than with cryptobyte: it
// needs a handful of bounded reads, and cryptobyte would bring its ASN.1
// half (and math/big) into a binary that has kilobytes to spare.
type TLSChecker struct{ cfg TLSConfig }

// NewTLS returns the checker for cfg.
func NewTLS(cfg TLSConfig) *TLSChecker { return &TLSChecker{cfg: cfg} }

// Proto returns TLS.
func (*TLSChecker) Proto() Proto { return TLS }

// Stream returns true: TLS runs over TCP.
func (*TLSChecker) Stream() bool { return true }

// Lifelong returns false: the ClientHello decides the flow.
func (*TLSChecker) Lifelong() bool { return false }

// MaxClientHello bounds the ClientHello the checker reassembles (handshake
// header included). Real ones are 200 bytes to 2 KiB (post-quantum key
// shares); one larger is judged by the framework's budget, unidentified.
const MaxClientHello = 4096

// TLS constants the parser needs.
const (
	tlsRecordHandshake  = 22
	tlsHandshakeHello   = 1
	tlsMaxRecord        = 1 << 14
	tlsExtServerName    = 0
	tlsExtECH           = 0xfe0d
	tlsServerNameHost   = 0
	tlsMaxNamedSessions = 32
)

// Check judges the start of the client's stream: one or more handshake
// records carrying a ClientHello.
func (c *TLSChecker) Check(data []byte) Verdict {
	if hello := wholeInFirstRecord(data); hello != nil {
		return c.judge(data, hello)
	}
	var buf [MaxClientHello]byte
	hello, out := reassembleHello(data, buf[:0])
	if out.Outcome != More || hello == nil {
		return out
	}
	return c.judge(data, hello)
}

// wholeInFirstRecord returns the ClientHello when the first record holds
// all of it (nearly always): it is then read in place, not copied.
func wholeInFirstRecord(data []byte) []byte {
	if len(data) < 9 || data[0] != tlsRecordHandshake || data[1] != 3 || data[2] > 4 || data[5] != tlsHandshakeHello {
		return nil
	}
	n := int(data[3])<<8 | int(data[4])
	if n > tlsMaxRecord || len(data) < 5+n {
		return nil
	}
	need := 4 + helloLen(data[5:])
	if need > n || need > MaxClientHello {
		return nil
	}
	return data[5 : 5+need]
}

// judge checks a whole ClientHello read from data.
func (c *TLSChecker) judge(data, hello []byte) Verdict {
	info, v := parseClientHello(hello)
	if v.Outcome != Pass {
		return v
	}
	v = Verdict{Outcome: Pass, Code: -1}
	if info.sni != nil {
		// The name points into buf, a local array: hand out the bytes of
		// data it was read from (nil when a record boundary splits it).
		v.Name = inData(data, hello, info.sni)
	}
	switch {
	case info.ech && c.cfg.ECH == Refuse:
		v.Outcome, v.Reason = Deny, "encrypted client hello"
	case info.sni == nil && c.cfg.NoSNI == Refuse:
		v.Outcome, v.Reason = Deny, "no server name"
	case info.sni != nil && c.cfg.Names != nil && !c.cfg.Names.Match(info.sni):
		v.Outcome, v.Reason = Deny, "server name not allowed"
	}
	return v
}

// inData returns the bytes of data that the part sub of hello (gathered
// from data's records) was copied from, nil when they straddle records.
func inData(data, hello, sub []byte) []byte {
	start := -1
	for i := range hello {
		if &hello[i] == &sub[0] {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	for pos := 0; len(data) >= 5; {
		n := int(data[3])<<8 | int(data[4])
		body := data[5:min(len(data), 5+n)]
		if start >= pos && start+len(sub) <= pos+len(body) {
			return body[start-pos : start-pos+len(sub)]
		}
		pos += len(body)
		if len(data) < 5+n {
			break
		}
		data = data[5+n:]
	}
	return nil
}

// reassembleHello gathers the handshake bytes of the handshake records at
// the start of data into buf. It returns the whole ClientHello message
// (header included) once it is there, with a More verdict; nil and More
// when more bytes are needed; nil and Mismatch for anything but TLS.
// Records may split the message anywhere (RFC 8446 §5.1), so a hello in
// two records, or two TCP segments, is read whole.
func reassembleHello(data, buf []byte) ([]byte, Verdict) {
	for len(data) > 0 {
		if len(data) < 5 {
			break
		}
		if data[0] != tlsRecordHandshake {
			return nil, mismatch("not a TLS handshake record")
		}
		// Record versions are 3.0 to 3.3 (TLS 1.3 writes 3.1 or 3.3).
		if data[1] != 3 || data[2] > 4 {
			return nil, mismatch("not a TLS record version")
		}
		n := int(data[3])<<8 | int(data[4])
		if n == 0 || n > tlsMaxRecord {
			return nil, mismatch("bad TLS record length")
		}
		frag := data[5:]
		if len(frag) > n {
			frag = frag[:n]
		}
		if len(buf)+len(frag) > cap(buf) {
			return nil, mismatch("client hello too long")
		}
		buf = append(buf, frag...)
		if len(frag) < n {
			break
		}
		data = data[5+n:]
		if len(buf) >= 4 && len(buf) >= 4+helloLen(buf) {
			break
		}
	}
	if len(buf) >= 1 && buf[0] != tlsHandshakeHello {
		return nil, mismatch("first handshake message is no client hello")
	}
	if len(buf) < 4 {
		return nil, more
	}
	need := 4 + helloLen(buf)
	if need > cap(buf) {
		return nil, mismatch("client hello too long")
	}
	if len(buf) < need {
		return nil, more
	}
	return buf[:need], more
}

func helloLen(b []byte) int { return int(b[1])<<16 | int(b[2])<<8 | int(b[3]) }

// helloInfo is what the check needs of a ClientHello.
type helloInfo struct {
	sni []byte // the host name asked for, nil when none
	ech bool
}

// reader reads big-endian fields from a byte slice; a read past the end
// sets bad and returns zeros, so a parser checks once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(b[0])<<8 | int(b[1])
}

// vec reads a vector with an n-byte length prefix (1 or 2).
func (r *reader) vec(n int) []byte {
	l := r.u8()
	if n == 2 {
		l = l<<8 | r.u8()
	}
	return r.bytes(l)
}

// parseClientHello reads a whole ClientHello message (RFC 8446 §4.1.2).
// Anything a server would refuse (duplicate extensions, two host names,
// lengths that do not add up) is a mismatch: two parsers reading one hello
// two ways is how a name check is slipped past.
func parseClientHello(msg []byte) (helloInfo, Verdict) {
	var info helloInfo
	r := reader{b: msg[4:]}
	if v := r.u16(); v>>8 != 3 {
		return info, mismatch("not a TLS client hello version")
	}
	r.bytes(32) // random
	if sid := r.vec(1); len(sid) > tlsMaxNamedSessions {
		return info, mismatch("bad session id")
	}
	if cs := r.vec(2); len(cs) < 2 || len(cs)%2 != 0 {
		return info, mismatch("bad cipher suites")
	}
	if cm := r.vec(1); len(cm) < 1 {
		return info, mismatch("bad compression methods")
	}
	if r.bad {
		return info, mismatch("truncated client hello")
	}
	if len(r.b) == 0 {
		return info, Verdict{Outcome: Pass, Code: -1} // no extensions: no name
	}
	exts := reader{b: r.vec(2)}
	if r.bad || len(r.b) != 0 {
		return info, mismatch("bad client hello extensions")
	}
	// Extension types seen, to refuse duplicates (RFC 8446 §4.2). A
	// bitmap of the low 1024 types and a few known high ones is enough:
	// duplicates matter for the two extensions read here.
	seenSNI := false
	for len(exts.b) > 0 {
		typ := exts.u16()
		body := exts.vec(2)
		if exts.bad {
			return info, mismatch("bad client hello extension")
		}
		switch typ {
		case tlsExtServerName:
			if seenSNI {
				return info, mismatch("two server name extensions")
			}
			seenSNI = true
			name, ok := readServerName(body)
			if !ok {
				return info, mismatch("bad server name extension")
			}
			info.sni = name
		case tlsExtECH:
			if info.ech {
				return info, mismatch("two encrypted client hello extensions")
			}
			info.ech = true
		}
	}
	return info, Verdict{Outcome: Pass, Code: -1}
}

// readServerName reads the server_name extension (RFC 6066 §3): exactly
// one host name, non-empty.
func readServerName(body []byte) ([]byte, bool) {
	r := reader{b: body}
	list := reader{b: r.vec(2)}
	if r.bad || len(r.b) != 0 {
		return nil, false
	}
	var host []byte
	for len(list.b) > 0 {
		typ := list.u8()
		name := list.vec(2)
		if list.bad || len(name) == 0 {
			return nil, false
		}
		if typ == tlsServerNameHost {
			if host != nil {
				return nil, false // "MUST NOT contain more than one name of the same name_type"
			}
			host = name
		}
	}
	return host, host != nil
}

var _ Checker = (*TLSChecker)(nil)
