package appid

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// MQTT control packet types (MQTT 3.1.1 §2.2.1, the same in 5.0 §2.1.2).
const (
	MQTTConnect     = 1
	MQTTConnack     = 2
	MQTTPublish     = 3
	MQTTPubrel      = 6
	MQTTSubscribe   = 8
	MQTTSuback      = 9
	MQTTUnsubscribe = 10
	MQTTUnsuback    = 11
	MQTTPingresp    = 13
)

// MQTTMaxRemaining is the largest remaining length the four bytes of the
// variable-length encoding can say (MQTT 3.1.1 §2.2.3).
const MQTTMaxRemaining = 268_435_455

// Errors of the MQTT parsers. They are values, never built per packet.
var (
	// ErrMQTTTruncated: the bytes end before the structure does. For a
	// packet that is not yet whole it means "wait for more"; inside a whole
	// packet it means the packet is malformed.
	ErrMQTTTruncated = errors.New("mqtt: truncated")
	// ErrMQTTLength: the remaining length runs past its four bytes, or is
	// not written in the fewest bytes.
	ErrMQTTLength = errors.New("mqtt: bad remaining length")
	// ErrMQTTMalformed: the packet breaks the protocol.
	ErrMQTTMalformed = errors.New("mqtt: malformed packet")
	// ErrNotMQTT: a CONNECT that names no MQTT protocol.
	ErrNotMQTT = errors.New("mqtt: not an MQTT CONNECT")
)

// MQTTHeader is the fixed header of an MQTT control packet.
type MQTTHeader struct {
	Type  uint8 // control packet type, 1 to 15
	Flags uint8 // the low four bits of the first byte
	// Size is the fixed header's own length: 2 to 5 bytes.
	Size int
	// Remaining is the length of the variable header and payload.
	Remaining int
}

// Len is the whole packet's length in bytes.
func (h MQTTHeader) Len() int { return h.Size + h.Remaining }

// mqttVarint reads a variable byte integer (the remaining length, and 5.0's
// property lengths): at most four bytes of seven bits, written in the fewest
// bytes (5.0 §1.5.5). A fifth byte is refused as soon as it is seen, without
// waiting for more data: a peer cannot make the reader wait on a length that
// can never be valid.
func mqttVarint(b []byte) (value, size int, err error) {
	mult := 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, 0, ErrMQTTLength
		}
		if i >= len(b) {
			return 0, 0, ErrMQTTTruncated
		}
		c := b[i]
		value += int(c&0x7f) * mult
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, ErrMQTTLength // a padded length: 0x80 0x00
			}
			return value, i + 1, nil
		}
		mult <<= 7
	}
}

// ParseMQTTHeader reads the fixed header at the start of b. It checks the
// type and the flags each type requires; it does not need the rest of the
// packet to be present.
func ParseMQTTHeader(b []byte) (MQTTHeader, error) {
	if len(b) == 0 {
		return MQTTHeader{}, ErrMQTTTruncated
	}
	h := MQTTHeader{Type: b[0] >> 4, Flags: b[0] & 0x0f}
	switch h.Type {
	case 0:
		return MQTTHeader{}, ErrMQTTMalformed // reserved
	case MQTTPublish:
		if h.Flags&0x06 == 0x06 {
			return MQTTHeader{}, ErrMQTTMalformed // QoS 3 (MQTT-3.3.1-4)
		}
	case MQTTPubrel, MQTTSubscribe, MQTTUnsubscribe:
		if h.Flags != 0x02 {
			return MQTTHeader{}, ErrMQTTMalformed // MQTT-3.8.1-1 and kin
		}
	default:
		if h.Flags != 0 {
			return MQTTHeader{}, ErrMQTTMalformed
		}
	}
	rem, n, err := mqttVarint(b[1:])
	if err != nil {
		return MQTTHeader{}, err
	}
	h.Size, h.Remaining = 1+n, rem
	return h, nil
}

// mqttString reads a two-byte-length-prefixed string at off.
func mqttString(b []byte, off int) (s []byte, next int, err error) {
	if off+2 > len(b) {
		return nil, 0, ErrMQTTTruncated
	}
	end := off + 2 + (int(b[off])<<8 | int(b[off+1]))
	if end > len(b) {
		return nil, 0, ErrMQTTTruncated
	}
	return b[off+2 : end], end, nil
}

// mqttSkipProperties skips a 5.0 property section at off.
func mqttSkipProperties(b []byte, off int) (next int, err error) {
	if off >= len(b) {
		return 0, ErrMQTTTruncated
	}
	n, size, err := mqttVarint(b[off:])
	if err != nil {
		return 0, err
	}
	next = off + size + n
	if next > len(b) {
		return 0, ErrMQTTTruncated
	}
	return next, nil
}

// MQTTConnectPacket is what a CONNECT says about its client.
type MQTTConnectPacket struct {
	// Level is the protocol level: 3 (3.1, "MQIsdp"), 4 (3.1.1) or 5 (5.0).
	Level uint8
	Flags uint8 // the connect flags
	// ClientID points into the bytes parsed.
	ClientID []byte
	next     int // where the will (or the user name) starts
}

// mqttWillFlag is the connect flag of a CONNECT that carries a will: a
// message the broker publishes, on the will topic, when the client goes
// away without a DISCONNECT.
const mqttWillFlag = 0x04

// WillTopic reads the will topic of a CONNECT whose start c was parsed
// from body (the same bytes, or more of them); nil when it has no will.
func (c *MQTTConnectPacket) WillTopic(body []byte) ([]byte, error) {
	if c.Flags&mqttWillFlag == 0 {
		return nil, nil
	}
	off := c.next
	if c.Level == 5 {
		var err error
		if off, err = mqttSkipProperties(body, off); err != nil {
			return nil, err
		}
	}
	topic, _, err := mqttString(body, off)
	return topic, err
}

// ParseMQTTConnect reads a CONNECT's variable header and client id from
// body, the bytes after the fixed header (all of them or a first part: the
// will, user name and password that follow the client id are not read).
func ParseMQTTConnect(body []byte) (MQTTConnectPacket, error) {
	name, off, err := mqttString(body, 0)
	if err != nil {
		return MQTTConnectPacket{}, err
	}
	if off+4 > len(body) {
		return MQTTConnectPacket{}, ErrMQTTTruncated
	}
	c := MQTTConnectPacket{Level: body[off], Flags: body[off+1]}
	switch {
	case string(name) == "MQTT" && (c.Level == 4 || c.Level == 5):
	case string(name) == "MQIsdp" && c.Level == 3:
	default:
		return MQTTConnectPacket{}, ErrNotMQTT
	}
	if c.Flags&0x01 != 0 {
		return MQTTConnectPacket{}, ErrMQTTMalformed // reserved flag (MQTT-3.1.2-3)
	}
	off += 4 // level, flags, keep alive
	if c.Level == 5 {
		if off, err = mqttSkipProperties(body, off); err != nil {
			return MQTTConnectPacket{}, err
		}
	}
	if c.ClientID, c.next, err = mqttString(body, off); err != nil {
		return MQTTConnectPacket{}, err
	}
	return c, nil
}

// MQTTPublishPacket is the start of a PUBLISH.
type MQTTPublishPacket struct {
	QoS uint8
	// Topic points into the bytes parsed. It is empty when a 5.0 client
	// names the topic by a Topic Alias instead.
	Topic    []byte
	PacketID uint16 // 0 for QoS 0
}

// ParseMQTTPublish reads a PUBLISH's topic name and packet id from body (the
// bytes after the fixed header, whole or a first part); flags are the fixed
// header's.
func ParseMQTTPublish(flags uint8, body []byte) (MQTTPublishPacket, error) {
	p := MQTTPublishPacket{QoS: flags >> 1 & 0x03}
	topic, off, err := mqttString(body, 0)
	if err != nil {
		return MQTTPublishPacket{}, err
	}
	p.Topic = topic
	if p.QoS > 0 {
		if off+2 > len(body) {
			return MQTTPublishPacket{}, ErrMQTTTruncated
		}
		p.PacketID = uint16(body[off])<<8 | uint16(body[off+1])
		if p.PacketID == 0 {
			return MQTTPublishPacket{}, ErrMQTTMalformed // MQTT-2.3.1-1
		}
	}
	return p, nil
}

// MQTTFilters iterates the topic filters of a SUBSCRIBE without allocating.
type MQTTFilters struct {
	rest  []byte
	level uint8
	err   error
}

// ParseMQTTSubscribe reads a whole SUBSCRIBE's body (the bytes after the
// fixed header) as a client of protocol level speaks it (5.0 puts a
// property section after the packet id) and returns its packet id and its
// topic filters.
func ParseMQTTSubscribe(body []byte, level uint8) (packetID uint16, filters MQTTFilters, err error) {
	if len(body) < 2 {
		return 0, MQTTFilters{}, ErrMQTTMalformed
	}
	packetID = uint16(body[0])<<8 | uint16(body[1])
	off := 2
	if level == 5 {
		if off, err = mqttSkipProperties(body, off); err != nil {
			return 0, MQTTFilters{}, ErrMQTTMalformed
		}
	}
	if packetID == 0 || off == len(body) {
		return 0, MQTTFilters{}, ErrMQTTMalformed // MQTT-2.3.1-1, MQTT-3.8.3-3
	}
	return packetID, MQTTFilters{rest: body[off:], level: level}, nil
}

// Next returns the next topic filter and its options byte; ok is false at
// the end or on a malformed entry (then Err says so).
func (it *MQTTFilters) Next() (filter []byte, options byte, ok bool) {
	if len(it.rest) == 0 || it.err != nil {
		return nil, 0, false
	}
	f, off, err := mqttString(it.rest, 0)
	if err != nil || off >= len(it.rest) {
		it.err, it.rest = ErrMQTTMalformed, nil
		return nil, 0, false
	}
	options = it.rest[off]
	// 3.1.1 allows only a QoS in the options; 5.0 adds no-local,
	// retain-as-published and retain handling, and reserves the top two
	// bits.
	bad := options&0x03 == 3 || options&0xc0 != 0 ||
		(it.level < 5 && options&0xfc != 0) || (it.level == 5 && options&0x30 == 0x30)
	if bad {
		it.err, it.rest = ErrMQTTMalformed, nil
		return nil, 0, false
	}
	it.rest = it.rest[off+1:]
	return f, options, true
}

// Err is the error that ended the iteration, or nil.
func (it *MQTTFilters) Err() error { return it.err }

// mqttTopicValid reports whether a topic name or, with filter set, a topic
// filter is well formed: UTF-8 without NUL (MQTT-1.5.3-1, -2), wildcards
// only as whole levels and '#' only last (MQTT-4.7.1), none in a name. A
// broker must refuse anything else; refusing it here as well means no
// broker's leniency with an odd byte can widen what a rule allows.
func mqttTopicValid(t []byte, filter bool) bool {
	if len(t) == 0 || !utf8.Valid(t) || bytes.IndexByte(t, 0) >= 0 {
		return false
	}
	if !filter {
		return bytes.IndexByte(t, '+') < 0 && bytes.IndexByte(t, '#') < 0
	}
	for start := 0; start <= len(t); {
		end := bytes.IndexByte(t[start:], '/')
		if end < 0 {
			end = len(t)
		} else {
			end += start
		}
		lvl := t[start:end]
		if bytes.IndexByte(lvl, '+') >= 0 && len(lvl) != 1 {
			return false
		}
		if bytes.IndexByte(lvl, '#') >= 0 && (len(lvl) != 1 || end != len(t)) {
			return false
		}
		start = end + 1
	}
	return true
}

// mqttFilter is an allowed topic filter, split into its levels when the
// policy is compiled.
type mqttFilter []string

// covers reports whether every topic that f can match, f being a topic name
// from a PUBLISH or a topic filter from a SUBSCRIBE, is matched by the
// allowed filter a: "cam/1/temp" and "cam/+/temp" are within "cam/#", but
// "cam/#" is not within "cam/+/temp", nor "#" within anything but "#".
func (a mqttFilter) covers(f []byte) bool {
	// A filter starting with a wildcard never matches a topic starting with
	// '$' (MQTT-4.7.2-1): "#" does not grant "$SYS/#".
	if len(f) > 0 && f[0] == '$' && len(a) > 0 && (a[0] == "+" || a[0] == "#") {
		return false
	}
	pos := 0 // where f's next level starts; past len(f) when none is left
	for _, al := range a {
		if al == "#" {
			return true // also the parent level: "a/#" matches "a"
		}
		if pos > len(f) {
			return false
		}
		end := bytes.IndexByte(f[pos:], '/')
		var lvl []byte
		if end < 0 {
			lvl, pos = f[pos:], len(f)+1
		} else {
			lvl, pos = f[pos:pos+end], pos+end+1
		}
		switch {
		case len(lvl) == 1 && lvl[0] == '#':
			return false // al is not "#"
		case al == "+":
		case len(lvl) == 1 && lvl[0] == '+':
			return false // al is a literal
		case al != string(lvl):
			return false
		}
	}
	return pos > len(f)
}

// newMQTTFilter checks and splits an allowed filter written in a policy.
func newMQTTFilter(s string) (mqttFilter, bool) {
	if !mqttTopicValid([]byte(s), true) {
		return nil, false
	}
	var f mqttFilter
	for {
		i := bytes.IndexByte([]byte(s), '/')
		if i < 0 {
			return append(f, s), true
		}
		f, s = append(f, s[:i]), s[i+1:]
	}
}
