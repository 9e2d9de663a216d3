package appid

import (
	"fmt"
	"unicode/utf8"
)

// MQTTConstraint is what a rule allows an MQTT client to say.
type MQTTConstraint struct {
	// ClientIDs are patterns for the CONNECT's client id, '*' matching any
	// run of bytes ("cam-*"). None: any client id.
	ClientIDs []string
	// Publish lists the topic filters ('+', '#') a PUBLISH's topic must
	// match; Subscribe those a SUBSCRIBE's every topic filter must lie
	// within. Either list set (even empty) restricts topics: every PUBLISH
	// and SUBSCRIBE of the flow is then checked, and the other list, left
	// nil, allows nothing of its kind.
	Publish, Subscribe []string
}

// MQTTChecker checks plain MQTT 3.1, 3.1.1 and 5.0 against an
// MQTTConstraint. A broker on TLS (port 8883) cannot be read: such a rule
// says app = "tls" and constrains the server name instead.
type MQTTChecker struct {
	clientIDs []string
	publish   []mqttFilter
	subscribe []mqttFilter
	topics    bool
}

var _ Checker = (*MQTTChecker)(nil)

// mqttMaxSubscribe bounds a SUBSCRIBE waited for whole: its filters are
// judged together, and a peer must not make the checker buffer without
// end. Real devices subscribe to a few short filters.
const mqttMaxSubscribe = 4096

// Reasons an MQTT flow is refused.
const (
	reasonNotMQTT         = "not MQTT"
	reasonMQTTOverTLS     = "TLS, not plain MQTT"
	reasonNoConnect       = "first packet not CONNECT"
	reasonMQTTMalformed   = "malformed MQTT packet"
	reasonMQTTLength      = "remaining length over 4 bytes"
	reasonMQTTServerType  = "server packet type from client"
	reasonClientID        = "client id not allowed"
	reasonPublishTopic    = "publish topic not allowed"
	reasonWillTopic       = "will topic not allowed"
	reasonSubscribeFilter = "subscribe filter not allowed"
	reasonSubscribeLong   = "SUBSCRIBE too long"
)

// ValidMQTTFilter reports whether s is a well-formed MQTT topic filter.
func ValidMQTTFilter(s string) bool { return mqttTopicValid([]byte(s), true) }

// NewMQTTChecker compiles c.
func NewMQTTChecker(c MQTTConstraint) (*MQTTChecker, error) {
	m := &MQTTChecker{topics: c.Publish != nil || c.Subscribe != nil}
	for _, p := range c.ClientIDs {
		if p == "" {
			return nil, fmt.Errorf("mqtt: empty client id pattern")
		}
		m.clientIDs = append(m.clientIDs, p)
	}
	var err error
	if m.publish, err = newMQTTFilters("publish", c.Publish); err != nil {
		return nil, err
	}
	if m.subscribe, err = newMQTTFilters("subscribe", c.Subscribe); err != nil {
		return nil, err
	}
	return m, nil
}

func newMQTTFilters(what string, list []string) ([]mqttFilter, error) {
	out := make([]mqttFilter, 0, len(list))
	for _, s := range list {
		f, ok := newMQTTFilter(s)
		if !ok {
			return nil, fmt.Errorf("mqtt: %s %q is not a valid topic filter", what, s)
		}
		out = append(out, f)
	}
	return out, nil
}

// Proto is MQTT.
func (c *MQTTChecker) Proto() Proto { return MQTT }

// Stream is true: MQTT runs over TCP.
func (c *MQTTChecker) Stream() bool { return true }

// Lifelong is true when topics are restricted: every PUBLISH and SUBSCRIBE
// must then be seen. A constraint on the client id alone is settled by the
// CONNECT, and the flow may be fast-pathed after it.
func (c *MQTTChecker) Lifelong() bool { return c.topics }

// CheckFirst judges the first bytes of a flow: they must start with a
// CONNECT, or the flow is not MQTT.
func (c *MQTTChecker) CheckFirst(data []byte) Verdict { return c.check(data, mqttOpening) }

// Check judges whole packets at the start of data. Without topic
// constraints only the CONNECT is ever judged, so data must start with one.
// With them, Check is also handed the later packets: it judges any packet
// type, a CONNECT by its client id wherever it comes (a broker closes a
// connection that sends a second one).
//
// A PUBLISH to a forbidden topic is denied as soon as its topic is in
// data; an allowed one, like every packet, is used only once it is whole,
// so Used always ends on a packet boundary within data.
func (c *MQTTChecker) Check(data []byte) Verdict {
	if !c.topics {
		return c.check(data, mqttOpening)
	}
	return c.check(data, mqttAnywhere)
}

// mqttPlace says whether data is known to start the flow.
type mqttPlace uint8

const (
	mqttAnywhere mqttPlace = iota
	mqttOpening
)

func (c *MQTTChecker) check(data []byte, place mqttPlace) Verdict {
	v := Verdict{Code: -1}
	used := 0
	for used < len(data) {
		opening := place == mqttOpening && used == 0
		h, err := ParseMQTTHeader(data[used:])
		switch {
		case err == ErrMQTTTruncated:
		case err != nil && opening && data[0] == 0x16:
			// A TLS record (MQTT on 8883): the rule should say
			// app = "tls"; the reason says so in the event.
			return Verdict{Outcome: Mismatch, Reason: reasonMQTTOverTLS, Code: -1}
		case err != nil && opening:
			return Verdict{Outcome: Mismatch, Reason: reasonNotMQTT, Code: -1}
		case err == ErrMQTTLength:
			return Verdict{Outcome: Deny, Reason: reasonMQTTLength, Code: int(data[used] >> 4)}
		case err != nil:
			return Verdict{Outcome: Deny, Reason: reasonMQTTMalformed, Code: int(data[used] >> 4)}
		case opening && h.Type != MQTTConnect:
			return Verdict{Outcome: Mismatch, Reason: reasonNoConnect, Code: int(h.Type)}
		}
		if err != nil {
			break // the fixed header is not all here yet
		}
		end := used + h.Len()
		pv := c.packet(h, data[used+h.Size:min(end, len(data))], end <= len(data))
		if pv.Outcome == Mismatch && !opening {
			pv.Outcome, pv.Reason = Deny, reasonMQTTMalformed
		}
		if pv.Outcome != Pass {
			if pv.Outcome == More {
				break
			}
			return pv
		}
		if pv.Name != nil {
			v.Name = pv.Name
		}
		if h.Type == MQTTConnect && !c.topics {
			// The client id was all there was to judge: the will, user
			// name and password after it need not be waited for.
			v.Code, used = int(h.Type), min(end, len(data))
			break
		}
		if end > len(data) {
			break // allowed so far; used once whole
		}
		v.Code, used = int(h.Type), end
	}
	if used == 0 {
		return Verdict{Outcome: More, Code: -1}
	}
	v.Outcome, v.Used = Pass, used
	return v
}

// packet judges one packet whose fixed header is h; body is the part of
// the rest that is in hand, whole when the packet is.
func (c *MQTTChecker) packet(h MQTTHeader, body []byte, whole bool) Verdict {
	code := int(h.Type)
	switch h.Type {
	case MQTTConnect:
		p, err := ParseMQTTConnect(body)
		switch {
		case err == ErrMQTTTruncated && !whole:
			return Verdict{Outcome: More}
		case err != nil, !utf8.Valid(p.ClientID):
			return Verdict{Outcome: Mismatch, Reason: reasonNotMQTT, Code: code}
		case !c.clientIDAllowed(p.ClientID):
			return Verdict{Outcome: Deny, Reason: reasonClientID, Name: p.ClientID, Code: code}
		case c.topics:
			return c.willVerdict(&p, body, whole)
		}
		return Verdict{Outcome: Pass, Name: p.ClientID, Code: code}
	case MQTTPublish:
		if !c.topics {
			return Verdict{Outcome: Pass, Code: code}
		}
		p, err := ParseMQTTPublish(h.Flags, body)
		switch {
		case err == ErrMQTTTruncated && !whole:
			return Verdict{Outcome: More}
		case err != nil:
			return Verdict{Outcome: Deny, Reason: reasonMQTTMalformed, Code: code}
		case len(p.Topic) == 0:
			// A 5.0 Topic Alias: it stands for a topic an earlier PUBLISH
			// of this connection named together with the alias, and that
			// PUBLISH was judged here. Without an alias (3.1.1, or 5.0
			// without one) the broker must close the connection.
			return Verdict{Outcome: Pass, Code: code}
		case !mqttTopicValid(p.Topic, false):
			return Verdict{Outcome: Deny, Reason: reasonMQTTMalformed, Name: p.Topic, Code: code}
		case !mqttCovered(c.publish, p.Topic):
			return Verdict{Outcome: Deny, Reason: reasonPublishTopic, Name: p.Topic, Code: code}
		}
		return Verdict{Outcome: Pass, Code: code}
	case MQTTSubscribe:
		if !c.topics {
			return Verdict{Outcome: Pass, Code: code}
		}
		if !whole {
			if h.Len() > mqttMaxSubscribe {
				return Verdict{Outcome: Deny, Reason: reasonSubscribeLong, Code: code}
			}
			return Verdict{Outcome: More}
		}
		return c.subscribeVerdict(body)
	case MQTTConnack, MQTTSuback, MQTTUnsuback, MQTTPingresp:
		return Verdict{Outcome: Deny, Reason: reasonMQTTServerType, Code: code}
	}
	// PUBACK to PUBCOMP, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH: nothing a
	// rule constrains; skipped by their length.
	return Verdict{Outcome: Pass, Code: code}
}

// willVerdict judges the will of a CONNECT whose client id passed. The
// broker publishes the will itself when the connection drops, so a will
// topic is a publish: a client could otherwise name a forbidden topic
// there and cut its own connection.
func (c *MQTTChecker) willVerdict(p *MQTTConnectPacket, body []byte, whole bool) Verdict {
	topic, err := p.WillTopic(body)
	switch {
	case err == ErrMQTTTruncated && !whole:
		return Verdict{Outcome: More}
	case err != nil:
		return Verdict{Outcome: Mismatch, Reason: reasonNotMQTT, Code: MQTTConnect}
	case topic == nil:
		return Verdict{Outcome: Pass, Name: p.ClientID, Code: MQTTConnect}
	case !mqttTopicValid(topic, false):
		return Verdict{Outcome: Deny, Reason: reasonMQTTMalformed, Name: topic, Code: MQTTConnect}
	case !mqttCovered(c.publish, topic):
		return Verdict{Outcome: Deny, Reason: reasonWillTopic, Name: topic, Code: MQTTConnect}
	}
	return Verdict{Outcome: Pass, Name: p.ClientID, Code: MQTTConnect}
}

// subscribeVerdict judges a whole SUBSCRIBE body. Whether a property
// section follows the packet id depends on the protocol level the CONNECT
// named, which a checker shared by every flow does not keep; so the body
// is read both ways, and every reading that parses must subscribe only to
// allowed filters: whichever one the broker takes, it was checked.
func (c *MQTTChecker) subscribeVerdict(body []byte) Verdict {
	readings := 0
	for _, level := range [...]uint8{4, 5} {
		_, it, err := ParseMQTTSubscribe(body, level)
		if err != nil || !mqttFiltersValid(it) {
			continue
		}
		readings++
		for f, _, ok := it.Next(); ok; f, _, ok = it.Next() {
			if !mqttCovered(c.subscribe, f) {
				return Verdict{Outcome: Deny, Reason: reasonSubscribeFilter, Name: f, Code: MQTTSubscribe}
			}
		}
	}
	if readings == 0 {
		return Verdict{Outcome: Deny, Reason: reasonMQTTMalformed, Code: MQTTSubscribe}
	}
	return Verdict{Outcome: Pass, Code: MQTTSubscribe}
}

// mqttFiltersValid reports whether every filter of it (a copy) is well
// formed and the list ends cleanly.
func mqttFiltersValid(it MQTTFilters) bool {
	for f, _, ok := it.Next(); ok; f, _, ok = it.Next() {
		if !mqttTopicValid(f, true) {
			return false
		}
	}
	return it.Err() == nil
}

func mqttCovered(allowed []mqttFilter, f []byte) bool {
	for _, a := range allowed {
		if a.covers(f) {
			return true
		}
	}
	return false
}

func (c *MQTTChecker) clientIDAllowed(id []byte) bool {
	if len(c.clientIDs) == 0 {
		return true
	}
	for _, p := range c.clientIDs {
		if starMatch(p, id) {
			return true
		}
	}
	return false
}

// starMatch matches name against pattern, where '*' matches any run of
// bytes (none included). It backtracks only to the last star, so it takes
// at most len(pattern)*len(name) steps, whatever the client sends.
func starMatch(pattern string, name []byte) bool {
	px, nx := 0, 0
	starPx, starNx := -1, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			if pattern[px] == '*' {
				starPx, starNx = px, nx
				px++
				continue
			}
			if nx < len(name) && name[nx] == pattern[px] {
				px++
				nx++
				continue
			}
		}
		if starPx >= 0 && starNx < len(name) {
			starNx++
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}
