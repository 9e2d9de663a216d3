package appid

import "errors"

// CoAP message types (RFC 7252 §3).
const (
	CoAPConfirmable    = 0
	CoAPNonConfirmable = 1
	CoAPAck            = 2
	CoAPReset          = 3
)

// CoAP request method codes (class 0): RFC 7252 §12.1.1 and RFC 8132.
const (
	CoAPEmpty  = 0x00
	CoAPGet    = 0x01
	CoAPPost   = 0x02
	CoAPPut    = 0x03
	CoAPDelete = 0x04
	CoAPFetch  = 0x05
	CoAPPatch  = 0x06
	CoAPIPatch = 0x07
)

// CoAP option numbers the checker reads (RFC 7252 §5.10).
const (
	CoAPOptionUriPath     = 11
	CoAPOptionProxyUri    = 35
	CoAPOptionProxyScheme = 39
)

var coapMethodNames = [...]string{"", "GET", "POST", "PUT", "DELETE", "FETCH", "PATCH", "iPATCH"}

// CoAPMethod returns the method code named s ("GET", "iPATCH"), spelt as
// the RFCs spell it; ok is false for anything else.
func CoAPMethod(s string) (code uint8, ok bool) {
	for i := CoAPGet; i < len(coapMethodNames); i++ {
		if coapMethodNames[i] == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// ErrNotCoAP is the error of a datagram that is not a well-formed CoAP
// message.
var ErrNotCoAP = errors.New("coap: not a well-formed message")

// CoAPMessage is one decoded CoAP message. Its slices point into the
// datagram parsed.
type CoAPMessage struct {
	Version   uint8
	Type      uint8
	Code      uint8 // class in the top three bits, detail in the low five
	MessageID uint16
	Token     []byte
	Payload   []byte
	options   []byte // the options, checked by ParseCoAP
}

// ParseCoAP decodes a CoAP-over-UDP message: the header, the token, every
// option (with the 13 and 14 extended delta and length forms) and the
// payload marker. Anything out of the RFC's shape is ErrNotCoAP: version
// other than 1, token length 9 to 15 (§3), the reserved nibble 15 outside
// the payload marker, an option or extended field cut short, option
// numbers past 65535, a payload marker with no payload (§3), or an Empty
// message (code 0.00) with a token or anything after the header (§4.1).
func ParseCoAP(b []byte) (CoAPMessage, error) {
	if len(b) < 4 {
		return CoAPMessage{}, ErrNotCoAP
	}
	m := CoAPMessage{
		Version:   b[0] >> 6,
		Type:      b[0] >> 4 & 0x03,
		Code:      b[1],
		MessageID: uint16(b[2])<<8 | uint16(b[3]),
	}
	tkl := int(b[0] & 0x0f)
	if m.Version != 1 || tkl > 8 || 4+tkl > len(b) {
		return CoAPMessage{}, ErrNotCoAP
	}
	if m.Code == CoAPEmpty && len(b) != 4 {
		return CoAPMessage{}, ErrNotCoAP
	}
	m.Token = b[4 : 4+tkl]
	rest := b[4+tkl:]
	it := CoAPOptions{rest: rest}
	for {
		_, _, ok := it.Next()
		if !ok {
			break
		}
	}
	if it.err != nil {
		return CoAPMessage{}, it.err
	}
	m.options = rest[:len(rest)-len(it.rest)]
	if len(it.rest) > 0 { // the payload marker
		if len(it.rest) == 1 {
			return CoAPMessage{}, ErrNotCoAP
		}
		m.Payload = it.rest[1:]
	}
	return m, nil
}

// IsRequest reports whether the code is a request method (class 0, not
// Empty).
func (m *CoAPMessage) IsRequest() bool { return m.Code>>5 == 0 && m.Code != CoAPEmpty }

// Options iterates the message's options in order.
func (m *CoAPMessage) Options() CoAPOptions { return CoAPOptions{rest: m.options} }

// AppendPath appends the request's path, its Uri-Path options joined with
// '/' ("/sensors/temp"; "/" with none), to dst. It allocates nothing when
// dst has room.
func (m *CoAPMessage) AppendPath(dst []byte) []byte {
	it := m.Options()
	n := 0
	for num, v, ok := it.Next(); ok; num, v, ok = it.Next() {
		if num == CoAPOptionUriPath {
			dst = append(append(dst, '/'), v...)
			n++
		}
	}
	if n == 0 {
		dst = append(dst, '/')
	}
	return dst
}

// CoAPOptions iterates CoAP options without allocating.
type CoAPOptions struct {
	rest []byte
	num  int
	err  error
}

// Next returns the next option's number and value; ok is false at the
// payload marker, at the end, or at a malformed option (recorded for
// ParseCoAP).
func (it *CoAPOptions) Next() (num int, value []byte, ok bool) {
	if len(it.rest) == 0 || it.rest[0] == 0xff || it.err != nil {
		return 0, nil, false
	}
	b := it.rest
	delta, off, ok := coapExtended(b, int(b[0]>>4), 1)
	if !ok {
		it.err = ErrNotCoAP
		return 0, nil, false
	}
	length, off, ok := coapExtended(b, int(b[0]&0x0f), off)
	if !ok || off+length > len(b) || it.num+delta > 0xffff {
		it.err = ErrNotCoAP
		return 0, nil, false
	}
	it.num += delta
	it.rest = b[off+length:]
	return it.num, b[off : off+length], true
}

// coapExtended decodes an option delta or length nibble, reading its
// extended bytes at off (RFC 7252 §3.1).
func coapExtended(b []byte, nibble, off int) (value, next int, ok bool) {
	switch nibble {
	case 13:
		if off+1 > len(b) {
			return 0, 0, false
		}
		return int(b[off]) + 13, off + 1, true
	case 14:
		if off+2 > len(b) {
			return 0, 0, false
		}
		return (int(b[off])<<8 | int(b[off+1])) + 269, off + 2, true
	case 15:
		return 0, 0, false // reserved outside the payload marker
	}
	return nibble, off, true
}
