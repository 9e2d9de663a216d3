package appid

// Proto is an application protocol a rule can require.
type Proto uint8

// The protocols a rule can require. None is "no application constraint".
const (
	None Proto = iota
	TLS
	HTTP
	DNS
	MQTT
	CoAP
	Modbus
	protoCount
)

var protoNames = [protoCount]string{"", "tls", "http", "dns", "mqtt", "coap", "modbus"}

// String returns the protocol's policy-file spelling ("tls"), "" for None.
func (p Proto) String() string {
	if p < protoCount {
		return protoNames[p]
	}
	return "unknown"
}

// ParseProto returns the protocol spelt s in a policy file; ok is false for
// anything else (None included: "" names no protocol).
func ParseProto(s string) (Proto, bool) {
	for p := TLS; p < protoCount; p++ {
		if protoNames[p] == s {
			return p, true
		}
	}
	return None, false
}

// Outcome is what a checker concluded from the bytes it was given.
type Outcome uint8

const (
	// More means there are not enough bytes to decide yet.
	More Outcome = iota
	// Pass means this protocol, and allowed (for a lifelong checker: the
	// messages judged are).
	Pass
	// Mismatch means the bytes are not this protocol.
	Mismatch
	// Deny means this protocol, but the constraint forbids what it carries.
	Deny
)

var outcomeNames = [...]string{"more", "pass", "mismatch", "deny"}

// String returns the outcome's stable name.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Verdict is a checker's answer.
type Verdict struct {
	Outcome Outcome
	// Used is how many bytes of a stream were judged (whole messages); the
	// framework drops them and hands the rest, with later bytes, to the
	// next call. Datagram checkers leave it 0.
	Used int
	// Reason is a constant phrase for Deny and Mismatch ("server name not
	// allowed", "write function", "query name too long").
	Reason string
	// Name is the identity found (SNI, Host, MQTT client id, CoAP path,
	// DNS query name); it points into the data handed to Check and is only
	// valid until the next call: the framework copies what it keeps.
	Name []byte
	// Code is a number worth reporting (the Modbus function code, the CoAP
	// method code, the MQTT packet type), or -1.
	Code int
}

// Checker judges one flow's client-to-server bytes against one rule's
// application constraint. It is built when the policy is compiled,
// immutable, and shared by every flow of the rule; per-flow state (the
// in-order stream bytes) lives in the framework.
type Checker interface {
	// Proto is the protocol the checker identifies.
	Proto() Proto
	// Stream reports whether the protocol runs over a TCP byte stream (the
	// framework reassembles the client's bytes in order) rather than one
	// message per datagram.
	Stream() bool
	// Lifelong reports whether every message of a flow must be checked
	// (Modbus writes, DNS queries): such flows are never fast-pathed.
	Lifelong() bool
	// Check judges data: for a stream, the flow's in-order client bytes not
	// yet used, starting at a message boundary; for a datagram protocol,
	// one datagram's payload. It never allocates and never keeps data.
	Check(data []byte) Verdict
}

// more is the verdict for "not enough bytes yet".
var more = Verdict{Outcome: More, Code: -1}

// mismatch returns a Mismatch verdict with a constant reason.
func mismatch(reason string) Verdict { return Verdict{Outcome: Mismatch, Reason: reason, Code: -1} }

// Opener is a Checker that judges a flow's first bytes otherwise than the
// rest (an MQTT flow must open with CONNECT, and a later CONNECT is no
// MQTT). The framework calls CheckFirst while nothing of a lifelong
// flow's stream has passed yet, and Check afterwards.
type Opener interface {
	CheckFirst(data []byte) Verdict
}
