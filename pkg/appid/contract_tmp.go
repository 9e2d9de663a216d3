// Package appid identifies the application protocol a flow speaks and checks what it
// carries against a rule's constraint. No kernel code; nothing allocates per packet.
package appid

// This file stands in for appid.go until the framework is merged.

// Proto is an application protocol a rule can require.
type Proto uint8

// The protocols.
const (
	None Proto = iota
	TLS
	HTTP
	DNS
	MQTT
	CoAP
	Modbus
)

// Outcome is what a checker concluded from the bytes it was given.
type Outcome uint8

// The outcomes.
const (
	More Outcome = iota
	Pass
	Mismatch
	Deny
)

// Verdict is a checker's answer.
type Verdict struct {
	Outcome Outcome
	Used    int
	Reason  string
	Name    []byte
	Code    int
}

// Checker judges one flow's client-to-server bytes.
type Checker interface {
	Proto() Proto
	Stream() bool
	Lifelong() bool
	Check(data []byte) Verdict
}
