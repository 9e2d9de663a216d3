package engine

import "net/netip"

// EventType names what happened. The names are stable: alerts, logs and
// tests rely on them.
type EventType uint8

const (
	// noEvent is no event: the decision is not raised.
	noEvent EventType = iota
	// EventDeny is a flow denied by a layer.
	EventDeny
	// EventSpoof is a known device using an address not its own, or its
	// address used from another hardware address.
	EventSpoof
	// EventWindow is a flow refused or cut because it is outside its rule's
	// time window.
	EventWindow
	// EventVolume is a flow or device that went over its byte bound.
	EventVolume
	// EventRate is a device opening new flows faster than its rule allows.
	EventRate
	// EventSilent is a device that moved fewer bytes than its rule's lower
	// bound over a whole period.
	EventSilent
	// EventUndecodable is a packet that could not be judged on its headers.
	EventUndecodable
	// EventFanOut is a device refused a flow because it reached more
	// distinct peers, or ports on one peer, than its rule's fan-out bound
	// allows in the window: the shape of a scan or a worm. It raises the
	// same possible_scan as the heuristic, now as a rule's decision.
	EventFanOut
	// EventAppMismatch is a flow that does not speak its rule's
	// application protocol (a tunnel on an open port).
	EventAppMismatch
	// EventAppDenied is a flow whose application carries what its rule
	// forbids (a server name, a host, a Modbus write).
	EventAppDenied
	// EventAppUnidentified is a flow whose application was not identified
	// within the inspection budget, denied by its rule.
	EventAppUnidentified
)

var eventNames = [...]string{"", "flow_denied", "spoofed_address", "outside_time_window", "volume_exceeded", "new_flow_rate_exceeded", "device_silent", "undecodable_packet",
	"possible_scan", "app_mismatch", "app_denied", "app_unidentified"}

// denial is the event a drop raises: ev, or EventDeny when the stage
// named none.
func denial(ev EventType) EventType {
	if ev == noEvent {
		return EventDeny
	}
	return ev
}

// String returns the event type's stable name.
func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "unknown"
}

// Event is one thing the alert system should hear about. It holds only
// values and strings owned by the policy, so emitting one allocates
// nothing; formatting is left to whoever receives it.
type Event struct {
	Type   EventType
	Time   int64 // unix nanoseconds
	Layer  Layer
	Reason Reason
	Device string // the source device's name, "" when unknown
	Rule   string // the deciding rule's name, "" for defaults
	Src    netip.Addr
	Dst    netip.Addr
	Proto  uint8
	SPort  uint16
	DPort  uint16
	// Bytes is the volume that tripped a volume bound, or moved in a period
	// for a silent device.
	Bytes uint64
	// App describes the application of an app_* event.
	App EventApp
}

// Sink receives events. Emit must not block and must not keep pointers
// into the engine; it is called on the verdict path.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }

type discard struct{}

func (discard) Emit(Event) {}

// The engine's own sinks fill the Sink seam.
var (
	_ Sink = SinkFunc(nil)
	_ Sink = discard{}
)
