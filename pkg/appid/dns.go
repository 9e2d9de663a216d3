package appid

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// DNS message limits. A message is read in one pass with fixed buffers:
// nothing it says can make the parser allocate, loop or read past it.
const (
	// MaxDNSName is the longest name in presentation form without the
	// final dot (RFC 1035: 255 octets on the wire, 253 written out).
	MaxDNSName = 253
	// MaxDNSAddrs is how many addresses of one answer are kept; the rest
	// are ignored (a device is not given more by one name in practice).
	MaxDNSAddrs = 16
	// maxDNSRecords bounds the answer records read from one message.
	maxDNSRecords = 64
	// maxDNSChain bounds a CNAME chain: the question and its aliases.
	maxDNSChain = 8
	// maxDNSPointers bounds the compression pointers followed for one name.
	// Pointers must also point before the label that holds them, so a loop
	// cannot form; the bound keeps a long backward chain cheap.
	maxDNSPointers = 16
)

// DNS record types and the class the observer reads.
const (
	DNSTypeA     uint16 = 1
	DNSTypeCNAME uint16 = 5
	DNSTypeAAAA  uint16 = 28
	dnsClassIN   uint16 = 1
)

// Errors of the DNS parser. They are constants: returning one allocates
// nothing.
var (
	ErrDNSShort     = errors.New("dns: message truncated")
	ErrDNSName      = errors.New("dns: malformed name")
	ErrDNSPointer   = errors.New("dns: bad compression pointer")
	ErrDNSQuestions = errors.New("dns: not exactly one question")
)

// DNSName is a domain name decoded into a fixed buffer: lower case,
// labels joined by dots, no final dot; the root is the empty name.
type DNSName struct {
	buf [MaxDNSName]byte
	n   uint8
}

// Bytes returns the name; it points into n.
func (n *DNSName) Bytes() []byte { return n.buf[:n.n] }

// String returns the name as a string (allocates; not for the packet path).
func (n *DNSName) String() string { return string(n.buf[:n.n]) }

// Equal reports whether two names are the same.
func (n *DNSName) Equal(o *DNSName) bool { return string(n.buf[:n.n]) == string(o.buf[:o.n]) }

// DNSHeader is the fixed 12-byte header.
type DNSHeader struct {
	ID               uint16
	Flags            uint16
	QDCount, ANCount uint16
	NSCount, ARCount uint16
}

// Response reports whether the QR bit is set.
func (h *DNSHeader) Response() bool { return h.Flags&0x8000 != 0 }

// Opcode is the header's operation code (0: a standard query).
func (h *DNSHeader) Opcode() uint8 { return uint8(h.Flags>>11) & 0xf }

// Rcode is the response code (0: no error).
func (h *DNSHeader) Rcode() uint8 { return uint8(h.Flags & 0xf) }

// DNSAddr is one address an answer gave for its question, with the
// smallest TTL on the way to it (the CNAMEs' and the address record's).
type DNSAddr struct {
	Addr netip.Addr
	TTL  uint32
}

// DNSMessage is a parsed DNS message: its header, its one question and,
// for a response, the addresses the answer section gives the question
// name, CNAME chains followed. Reuse one per goroutine: Parse allocates
// nothing.
type DNSMessage struct {
	Header   DNSHeader
	Question DNSName
	QType    uint16
	QClass   uint16
	// Addrs are the A and AAAA records of the question name or of a name
	// the question's CNAME chain leads to, in answer order.
	Addrs  [MaxDNSAddrs]DNSAddr
	NAddrs int

	chain  [maxDNSChain]DNSName
	ttl    [maxDNSChain]uint32 // smallest TTL on the way to chain[i]
	nchain int
	name   DNSName
}

// Parse reads msg. A message that is not exactly one question (the only
// kind resolvers send and answer in practice) is refused: which name an
// answer is for must never be ambiguous.
func (m *DNSMessage) Parse(msg []byte) error {
	m.NAddrs, m.nchain = 0, 0
	if len(msg) < 12 {
		return ErrDNSShort
	}
	h := &m.Header
	h.ID = binary.BigEndian.Uint16(msg[0:])
	h.Flags = binary.BigEndian.Uint16(msg[2:])
	h.QDCount = binary.BigEndian.Uint16(msg[4:])
	h.ANCount = binary.BigEndian.Uint16(msg[6:])
	h.NSCount = binary.BigEndian.Uint16(msg[8:])
	h.ARCount = binary.BigEndian.Uint16(msg[10:])
	if h.QDCount != 1 {
		return ErrDNSQuestions
	}
	off, err := readDNSName(msg, 12, &m.Question)
	if err != nil {
		return err
	}
	if off+4 > len(msg) {
		return ErrDNSShort
	}
	m.QType = binary.BigEndian.Uint16(msg[off:])
	m.QClass = binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	if !h.Response() || h.ANCount == 0 {
		return nil
	}
	return m.answers(msg, off)
}

// answers reads the answer section. Records are walked once per link of
// the CNAME chain found so far (at most maxDNSChain passes), so a chain
// written out of order is still followed, in bounded time.
func (m *DNSMessage) answers(msg []byte, start int) error {
	m.chain[0], m.ttl[0], m.nchain = m.Question, ^uint32(0), 1
	count := min(int(m.Header.ANCount), maxDNSRecords)
	for pass := 0; pass < maxDNSChain; pass++ {
		grew, err := m.answerPass(msg, start, count)
		if err != nil || !grew {
			return err
		}
	}
	return nil
}

// answerPass reads count records from off, adding CNAME targets of chain
// names to the chain and, on the pass that finds no new alias, the
// addresses of chain names. It reports whether the chain grew.
func (m *DNSMessage) answerPass(msg []byte, off, count int) (bool, error) {
	grew := false
	m.NAddrs = 0
	for i := 0; i < count; i++ {
		var err error
		if off, err = readDNSName(msg, off, &m.name); err != nil {
			return false, err
		}
		if off+10 > len(msg) {
			return false, ErrDNSShort
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		class := binary.BigEndian.Uint16(msg[off+2:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return false, ErrDNSShort
		}
		rdata := msg[off : off+rdlen]
		at := off
		off += rdlen
		link := m.inChain(&m.name)
		if link < 0 || class != dnsClassIN {
			continue
		}
		ttl = min(ttl, m.ttl[link])
		switch {
		case typ == DNSTypeCNAME:
			if m.nchain == maxDNSChain {
				continue
			}
			c := &m.chain[m.nchain]
			if _, err := readDNSName(msg, at, c); err != nil {
				return false, err
			}
			if m.inChain(c) < 0 {
				m.ttl[m.nchain] = ttl
				m.nchain++
				grew = true
			}
		case typ == DNSTypeA && rdlen == 4:
			m.addAddr(netip.AddrFrom4([4]byte(rdata)), ttl)
		case typ == DNSTypeAAAA && rdlen == 16:
			m.addAddr(netip.AddrFrom16([16]byte(rdata)), ttl)
		}
	}
	return grew, nil
}

func (m *DNSMessage) addAddr(a netip.Addr, ttl uint32) {
	if m.NAddrs < MaxDNSAddrs {
		m.Addrs[m.NAddrs] = DNSAddr{Addr: a, TTL: ttl}
		m.NAddrs++
	}
}

// inChain returns the index of n in the CNAME chain, or -1.
func (m *DNSMessage) inChain(n *DNSName) int {
	for i := 0; i < m.nchain; i++ {
		if m.chain[i].Equal(n) {
			return i
		}
	}
	return -1
}

// readDNSName decodes the name at off into out and returns the offset just
// past it where it is written (after its first pointer, if any). Labels
// holding a dot, a NUL or a byte outside printable ASCII are refused: a
// label "x.example" must never read as two labels and match a pattern it
// does not belong to.
func readDNSName(msg []byte, off int, out *DNSName) (int, error) {
	out.n = 0
	n, next, hops := 0, -1, 0
	// start is where the labels being read began: a pointer must point
	// before it. Each jump then goes strictly backwards, so no chain of
	// pointers can loop, whatever the message says.
	start := off
	for {
		if off >= len(msg) {
			return 0, ErrDNSShort
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0xc0:
			if off+1 >= len(msg) {
				return 0, ErrDNSShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if ptr >= start || hops == maxDNSPointers {
				return 0, ErrDNSPointer
			}
			hops++
			if next < 0 {
				next = off + 2
			}
			off, start = ptr, ptr
			continue
		case 0x00:
		default:
			return 0, ErrDNSName // the 0x40 and 0x80 label types are obsolete
		}
		if l == 0 {
			if next < 0 {
				next = off + 1
			}
			out.n = uint8(n)
			return next, nil
		}
		if off+1+l > len(msg) {
			return 0, ErrDNSShort
		}
		sep := 0
		if n > 0 {
			sep = 1
		}
		if n+sep+l > MaxDNSName {
			return 0, ErrDNSName
		}
		if sep == 1 {
			out.buf[n] = '.'
			n++
		}
		for _, c := range msg[off+1 : off+1+l] {
			if c <= ' ' || c >= 0x7f || c == '.' {
				return 0, ErrDNSName
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			out.buf[n] = c
			n++
		}
		off += 1 + l
	}
}
