package engine

// Verdict is what a stage, or the whole pipeline, decides for a packet.
type Verdict uint8

const (
	// Continue is a stage's "no opinion": the next stage decides. It is
	// never the pipeline's final verdict.
	Continue Verdict = iota
	// Accept lets the packet and, once cached, its flow pass.
	Accept
	// Drop discards the packet and, once cached, its flow.
	Drop
	// NeedMore accepts this packet but keeps the flow under inspection:
	// the next packet is judged again instead of being fast-pathed.
	NeedMore
)

var verdictNames = [...]string{"continue", "accept", "drop", "need-more"}

// String returns the verdict's stable name.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Layer names the part of the pipeline that decided.
type Layer uint8

const (
	// LayerNone means no layer decided (never in a final decision).
	LayerNone Layer = iota
	// LayerDecode decides packets that cannot be judged on their headers:
	// fragments, truncated or malformed packets, non-IP frames.
	LayerDecode
	// LayerIdentify decides spoofed source addresses.
	LayerIdentify
	// LayerSegment is zone to zone.
	LayerSegment
	// LayerMicro is device and service pairs inside what a segment allows.
	LayerMicro
	// LayerPico is the per-flow constraints of the allow rule that matched.
	LayerPico
)

// Layers lists every deciding layer in pipeline order.
var Layers = [...]Layer{LayerDecode, LayerIdentify, LayerSegment, LayerMicro, LayerPico}

var layerNames = [...]string{"none", "decode", "identify", "segment", "micro", "pico"}

// String returns the layer's stable name.
func (l Layer) String() string {
	if int(l) < len(layerNames) {
		return layerNames[l]
	}
	return "unknown"
}

// Reason is a constant explanation of a decision. Reasons are codes, not
// formatted strings, so that deciding never allocates.
type Reason uint8

// Reasons, grouped by the layer that gives them.
const (
	ReasonNone Reason = iota
	ReasonFragment
	ReasonTruncated
	ReasonMalformed
	ReasonNotIP
	ReasonSpoofedMAC
	ReasonSpoofedAddr
	ReasonSegmentAllow
	ReasonSegmentDeny
	ReasonNoSegment
	ReasonNoAllowRule
	ReasonErrorOfFlow
	ReasonErrorNoFlow
	ReasonOutsideWindow
	ReasonPacketSize
	ReasonFlowBytes
	ReasonDeviceBytes
	ReasonNewFlowRate
	ReasonStateFull
	ReasonInspecting
	ReasonWithinLimits
	ReasonAllowRule
	ReasonSpoofedZone
	ReasonUnspecifiedSrc
	ReasonGatewayDefault
	ReasonSpoofedPort
	ReasonFanOutPeers
	ReasonFanOutPorts
	ReasonAppInspecting
	ReasonAppIdentified
	ReasonAppMismatch
	ReasonAppDenied
	ReasonAppUnidentified
	ReasonAppOutOfOrder
	reasonCount
)

var reasonText = [reasonCount]string{
	ReasonNone:          "",
	ReasonFragment:      "IP fragment: ports cannot be trusted, fragments are dropped",
	ReasonTruncated:     "packet truncated inside its headers",
	ReasonMalformed:     "malformed IP header",
	ReasonNotIP:         "not an IP packet: outside what picoseg judges",
	ReasonSpoofedMAC:    "known device sent from an address that is not its own",
	ReasonSpoofedAddr:   "address of a known device sent from another hardware address",
	ReasonSegmentAllow:  "segment allows everything from this zone to that zone",
	ReasonSegmentDeny:   "segment denies this zone to that zone",
	ReasonNoSegment:     "no segment rule for this pair of zones",
	ReasonNoAllowRule:   "no allow rule permits this device, peer and service",
	ReasonErrorOfFlow:   "ICMP error about an accepted flow, sent to that flow's side",
	ReasonErrorNoFlow:   "ICMP error quoting no accepted flow: an error never opens a flow",
	ReasonOutsideWindow: "outside the rule's time window",
	ReasonPacketSize:    "packet size outside the rule's bounds",
	ReasonFlowBytes:     "flow exceeded the rule's byte limit",
	ReasonDeviceBytes:   "device exceeded the rule's byte budget for this period",
	ReasonNewFlowRate:   "device opened new flows faster than the rule allows",
	ReasonStateFull:     "per-device state table full: refusing rather than not counting",
	ReasonInspecting:    "allowed so far; the flow is still being inspected",
	ReasonWithinLimits:  "allow rule matches and the flow is within its constraints",
	ReasonAllowRule:     "allow rule matches",

	// Where an address comes from, and the gateway's default services.
	ReasonSpoofedZone:    "source address belongs to another zone (or to the gateway) than the interface the packet came in on",
	ReasonUnspecifiedSrc: "unspecified source address (0.0.0.0 or ::) outside DHCP, neighbour discovery and group membership reports",
	ReasonGatewayDefault: "a service every network needs, allowed to the gateway by default",
	ReasonSpoofedPort:    "address of a device known only by its address, sent from another bridge port or hardware address than the one it is bound to",

	// Fan-out bounds.
	ReasonFanOutPeers: "device reached more distinct peers under the rule than its max_peers allows in fanout_window",
	ReasonFanOutPorts: "device reached more distinct ports on one peer under the rule than its max_ports allows in fanout_window",

	// Application identity (app.go).
	ReasonAppInspecting:   "allowed so far; the flow's application is being identified",
	ReasonAppIdentified:   "the flow speaks the rule's application, within its constraints",
	ReasonAppMismatch:     "the flow does not speak the rule's application",
	ReasonAppDenied:       "the flow's application carries what the rule forbids",
	ReasonAppUnidentified: "the flow's application was not identified within the inspection budget",
	ReasonAppOutOfOrder:   "segment ahead of the bytes inspected so far: dropped until the gap is filled",
}

// String returns the reason's text.
func (r Reason) String() string {
	if r < reasonCount {
		return reasonText[r]
	}
	return "unknown"
}
