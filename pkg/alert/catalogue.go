package alert

import (
	"encoding"
	"fmt"
	"strings"

	"github.com/picoseg/picoseg/pkg/engine"
)

// Type names a kind of alert. The names are stable: operators match on them
// in their log filters and SIEM rules, so a name is never changed or reused.
type Type uint8

// Types and severities travel as their names in JSON and TOML.
var (
	_ encoding.TextMarshaler   = Type(0)
	_ encoding.TextUnmarshaler = (*Type)(nil)
	_ encoding.TextMarshaler   = Severity(0)
	_ encoding.TextUnmarshaler = (*Severity)(nil)
)

// The alert catalogue. doc.go documents it as a table; keep the two in step.
const (
	// TypeNone is the zero Type; it is never raised.
	TypeNone Type = iota
	// TypeFlowDenied is a flow denied by a layer (the alert carries the layer).
	TypeFlowDenied
	// TypeSpoofedAddress is a known device using an address not its own, or
	// its address used from another hardware address.
	TypeSpoofedAddress
	// TypeNewDevice is a device picoseg had not seen before.
	TypeNewDevice
	// TypeDeviceSilent is a device that moved less than its rule's lower
	// bound over a whole period.
	TypeDeviceSilent
	// TypeVolumeExceeded is a flow or device over its byte bound.
	TypeVolumeExceeded
	// TypeOutsideTimeWindow is a flow refused or cut outside its rule's time
	// window.
	TypeOutsideTimeWindow
	// TypeNewFlowRateExceeded is a device opening new flows faster than its
	// rule allows.
	TypeNewFlowRateExceeded
	// TypePossibleScan is one device reaching many distinct destinations or
	// ports in a short time, or refused a flow by its rule's fan-out bound
	// (max_peers, max_ports).
	TypePossibleScan
	// TypeQueueOverflow is the packet queue overflowing.
	TypeQueueOverflow
	// TypePolicyReloadFailed is a reload rejected; the running policy stays.
	TypePolicyReloadFailed
	// TypeDaemonStarted is the daemon starting to judge packets.
	TypeDaemonStarted
	// TypeInternalError is a bug hit while judging a packet: that packet
	// got the on_daemon_down verdict and the daemon went on judging.
	TypeInternalError
	// TypeDaemonStopped is the daemon stopping.
	TypeDaemonStopped
	// TypeUndecodablePacket is a packet that could not be judged on its
	// headers.
	TypeUndecodablePacket
	// TypeAlertsSuppressed is a severity's alert budget running out: from
	// now on alerts of that severity are held back and counted in
	// summaries.
	TypeAlertsSuppressed
	// TypeAlertsResumed ends a TypeAlertsSuppressed episode, with how many
	// alerts were held back.
	TypeAlertsResumed
	// TypeARPSpoof is ARP or a neighbour advertisement from a bridge port
	// claiming an address bound to another device or to the gateway.
	TypeARPSpoof
	// TypeARPFlood is ARP or neighbour discovery over a bridge port's budget.
	TypeARPFlood
	// TypeRulesetRestored is picoseg's nftables table found deleted or
	// changed by someone else, and installed again.
	TypeRulesetRestored
	// TypeRogueRouter is a router advertisement, a redirect or a DHCP
	// server message from a bridge port: a device impersonating the
	// gateway (unless the zone lists it in port_routers).
	TypeRogueRouter
	// TypeAppMismatch is a flow that does not speak its rule's
	// application protocol (a tunnel on an open port).
	TypeAppMismatch
	// TypeAppDenied is a flow whose application carries what its rule
	// forbids: a server name, a host, a Modbus write (the alert names the
	// function code).
	TypeAppDenied
	// TypeAppUnidentified is a flow whose application was not identified
	// within the inspection budget, denied by its rule.
	TypeAppUnidentified

	typeCount
)

// entry is one row of the catalogue.
type entry struct {
	name     string
	severity Severity
	title    string // a short phrase used in messages
	// event is the engine event that raises this type, 0 for none. Such a
	// type is named by the event: the engine's names are the ones its
	// events and replay reports already carry, and one thing must not be
	// known by two names.
	event engine.EventType
}

// named is the row of a type picoseg raises itself, not for an engine
// event.
func named(name string, severity Severity, title string) entry {
	return entry{name: name, severity: severity, title: title}
}

// raisedBy is the row of a type that the engine event ev raises.
func raisedBy(ev engine.EventType, severity Severity, title string) entry {
	return entry{name: ev.String(), severity: severity, title: title, event: ev}
}

var catalogue = [typeCount]entry{
	TypeNone:                named("", SeverityDebug, ""),
	TypeFlowDenied:          raisedBy(engine.EventDeny, SeverityWarning, "flow denied"),
	TypeSpoofedAddress:      raisedBy(engine.EventSpoof, SeverityCritical, "spoofed address"),
	TypeNewDevice:           named("new_device", SeverityNotice, "new device"),
	TypeDeviceSilent:        raisedBy(engine.EventSilent, SeverityWarning, "device silent"),
	TypeVolumeExceeded:      raisedBy(engine.EventVolume, SeverityWarning, "volume exceeded"),
	TypeOutsideTimeWindow:   raisedBy(engine.EventWindow, SeverityNotice, "outside time window"),
	TypeNewFlowRateExceeded: raisedBy(engine.EventRate, SeverityWarning, "new-flow rate exceeded"),
	TypePossibleScan:        named("possible_scan", SeverityWarning, "possible scan"),
	TypeQueueOverflow:       named("queue_overflow", SeverityError, "packet queue overflow"),
	TypePolicyReloadFailed:  named("policy_reload_failed", SeverityError, "policy reload failed, the running policy stays"),
	TypeDaemonStarted:       named("daemon_started", SeverityInfo, "picoseg started"),
	TypeInternalError:       named("internal_error", SeverityError, "internal error while judging a packet"),
	TypeDaemonStopped:       named("daemon_stopped", SeverityNotice, "picoseg stopped"),
	TypeUndecodablePacket:   raisedBy(engine.EventUndecodable, SeverityNotice, "undecodable packet"),
	TypeAlertsSuppressed:    named("alerts_suppressed", SeverityError, "alert budget spent, alerts are held back"),
	TypeAlertsResumed:       named("alerts_resumed", SeverityNotice, "alerts flow again"),
	TypeARPSpoof:            named("arp_spoof", SeverityCritical, "ARP or neighbour spoofing"),
	TypeARPFlood:            named("arp_flood", SeverityWarning, "ARP or neighbour discovery flood"),
	TypeRulesetRestored:     named("ruleset_restored", SeverityError, "picoseg's table was lost and installed again"),
	TypeRogueRouter:         named("rogue_router", SeverityCritical, "a device on a bridge port acting as the router or DHCP server"),
	TypeAppMismatch:         raisedBy(engine.EventAppMismatch, SeverityWarning, "flow is not its rule's application"),
	TypeAppDenied:           raisedBy(engine.EventAppDenied, SeverityWarning, "application denied"),
	TypeAppUnidentified:     raisedBy(engine.EventAppUnidentified, SeverityNotice, "application not identified"),
}

// Types returns every alert type in catalogue order.
func Types() []Type {
	ts := make([]Type, 0, typeCount-1)
	for t := TypeNone + 1; t < typeCount; t++ {
		ts = append(ts, t)
	}
	return ts
}

// String returns the type's stable name, e.g. "flow_denied".
func (t Type) String() string {
	if t < typeCount {
		return catalogue[t].name
	}
	return "unknown"
}

// Severity returns the syslog severity alerts of this type carry.
func (t Type) Severity() Severity {
	if t < typeCount {
		return catalogue[t].severity
	}
	return SeverityWarning
}

// Valid reports whether t is a type of the catalogue.
func (t Type) Valid() bool { return t > TypeNone && t < typeCount }

// ParseType returns the type with the given stable name.
func ParseType(name string) (Type, error) {
	for t := TypeNone + 1; t < typeCount; t++ {
		if catalogue[t].name == name {
			return t, nil
		}
	}
	return TypeNone, fmt.Errorf("unknown alert type %q", name)
}

// MarshalText encodes the type as its stable name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes a stable name.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// FromEvent returns the alert type an engine event raises. It reports false
// for event types it does not know, so that an engine newer than this
// package is noticed by the catalogue test instead of alerting as garbage.
func FromEvent(t engine.EventType) (Type, bool) {
	if t == 0 {
		return TypeNone, false
	}
	if t == engine.EventFanOut {
		// A rule's fan-out bound refused the flow: the heuristic's
		// possible_scan, now decided by a rule (with its name and reason).
		return TypePossibleScan, true
	}
	for ty := TypeNone + 1; ty < typeCount; ty++ {
		if catalogue[ty].event == t {
			return ty, true
		}
	}
	return TypeNone, false
}

// Severity is a syslog severity (RFC 5424 section 6.2.1): lower is worse.
type Severity uint8

// Syslog severities.
const (
	SeverityEmergency Severity = iota
	SeverityAlert
	SeverityCritical
	SeverityError
	SeverityWarning
	SeverityNotice
	SeverityInfo
	SeverityDebug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the severity's syslog keyword, e.g. "warning".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "unknown"
}

// MarshalText encodes the severity as its syslog keyword.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a syslog keyword.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if n == string(b) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown syslog severity %q", b)
}

// Facility is a syslog facility (RFC 5424 section 6.2.1).
type Facility uint8

// FacilityDaemon is the default facility: picoseg is a system daemon.
const FacilityDaemon Facility = 3

var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// String returns the facility's syslog keyword, e.g. "daemon".
func (f Facility) String() string {
	if int(f) < len(facilityNames) {
		return facilityNames[f]
	}
	return "unknown"
}

// ParseFacility returns the facility with the given syslog keyword
// (case-insensitive); "" is the default, daemon.
func ParseFacility(name string) (Facility, error) {
	if name == "" {
		return FacilityDaemon, nil
	}
	for i, n := range facilityNames {
		if strings.EqualFold(n, name) {
			return Facility(i), nil
		}
	}
	return 0, fmt.Errorf("unknown syslog facility %q (want daemon, user, auth, authpriv, local0 ... local7, ...)", name)
}

// priority is the PRI value of RFC 3164 and RFC 5424.
func priority(f Facility, s Severity) int { return int(f)*8 + int(s&7) }
