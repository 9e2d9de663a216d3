package alert

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
)

// Alert is one thing an operator is told. Alerts are values: sinks and
// Recent get copies.
type Alert struct {
	Type     Type
	Severity Severity
	Time     time.Time // when the (latest) event happened
	Device   string    // the source device's name, "" when unknown
	Src      netip.Addr
	Dst      netip.Addr
	Proto    string // "tcp", "udp", "icmp", "icmpv6", "proto/N"; "" when unknown
	DPort    uint16
	Layer    engine.Layer
	Rule     string // the deciding rule, "" for defaults
	Reason   string // why: the engine's reason text, or the daemon's error
	Bytes    uint64 // the volume behind volume_exceeded and device_silent
	// App, AppName, AppCode and AppDetail describe the application of an
	// app_* alert: the protocol ("modbus"), the name found (a server
	// name, a host), the number worth reporting (a Modbus function code;
	// -1 for none) and the check's reason ("write function").
	App       string
	AppName   string
	AppCode   int
	AppDetail string
	// Count is how many events this alert stands for: 1 for an alert
	// passed at once, the number folded for a summary.
	Count int
	// Summary marks an alert the limiter emitted for events it folded
	// since the previous alert of the same type and device.
	Summary bool
	// Message is a short human sentence. It is formatted only after the
	// limiter admitted the alert; Raise keeps one the caller set.
	Message string
}

// Alert marshals itself: its JSON is the record sinks and the status
// socket carry.
var _ json.Marshaler = Alert{}

// fromEvent turns an engine event into a candidate alert, without
// formatting anything.
func fromEvent(e *engine.Event, t Type, now time.Time) Alert {
	a := Alert{
		Type: t, Severity: t.Severity(), Time: now,
		Device: e.Device, Src: e.Src, Dst: e.Dst, Proto: packet.ProtoName(e.Proto), DPort: e.DPort,
		Layer: e.Layer, Rule: e.Rule, Reason: e.Reason.String(), Bytes: e.Bytes,
	}
	if e.Time != 0 {
		a.Time = time.Unix(0, e.Time)
	}
	if e.App.Proto != 0 {
		a.App, a.AppName, a.AppCode, a.AppDetail = e.App.Proto.String(), e.App.Name(), e.App.Code, e.App.Detail
	}
	return a
}

// appSuffix describes an app_* alert's application: ` [modbus function
// 6: write function]`, ` [tls "evil.example": server name not allowed]`.
func appSuffix(a *Alert) string {
	if a.App == "" {
		return ""
	}
	s := " [" + a.App
	if a.AppName != "" {
		s += " " + strconv.Quote(a.AppName)
	}
	if a.AppCode >= 0 {
		if a.App == "modbus" {
			s += " function"
		} else {
			s += " code"
		}
		s += " " + strconv.Itoa(a.AppCode)
	}
	if a.AppDetail != "" {
		s += ": " + a.AppDetail
	}
	return s + "]"
}

// hasPorts reports whether port numbers mean anything for proto.
func hasPorts(proto string) bool {
	return proto == "tcp" || proto == "udp"
}

// formatMessage writes the alert's human sentence, e.g.
//
//	camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied at the micro layer by rule "cams-nvr": no allow rule permits this device, peer and service
func formatMessage(a *Alert, scanThreshold int, scanWindow time.Duration) string {
	var b strings.Builder
	b.Grow(160)
	switch {
	case a.Device != "" && a.Src.IsValid():
		b.WriteString(a.Device)
		b.WriteString(" (")
		b.WriteString(a.Src.String())
		b.WriteString(")")
	case a.Device != "":
		b.WriteString(a.Device)
	case a.Src.IsValid():
		b.WriteString(a.Src.String())
	}
	if a.Dst.IsValid() {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("-> ")
		b.WriteString(a.Dst.String())
		if a.Proto != "" {
			b.WriteString(" ")
			b.WriteString(a.Proto)
			if hasPorts(a.Proto) {
				b.WriteString("/")
				b.WriteString(strconv.Itoa(int(a.DPort)))
			}
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if a.Type.Valid() {
		b.WriteString(catalogue[a.Type].title)
	} else {
		b.WriteString(a.Type.String())
	}
	if a.Type == TypeFlowDenied && a.Layer != engine.LayerNone {
		b.WriteString(" at the ")
		b.WriteString(a.Layer.String())
		b.WriteString(" layer")
	}
	if a.Rule != "" {
		b.WriteString(" by rule ")
		b.WriteString(strconv.Quote(a.Rule))
	}
	switch {
	case a.Type == TypePossibleScan && a.Reason == "":
		b.WriteString(": more than ")
		b.WriteString(strconv.Itoa(scanThreshold))
		b.WriteString(" distinct destinations or ports within ")
		b.WriteString(scanWindow.String())
	case a.Reason != "":
		b.WriteString(": ")
		b.WriteString(a.Reason)
	}
	if a.Bytes > 0 && (a.Type == TypeVolumeExceeded || a.Type == TypeDeviceSilent) {
		b.WriteString(" (")
		b.WriteString(strconv.FormatUint(a.Bytes, 10))
		b.WriteString(" bytes)")
	}
	b.WriteString(appSuffix(a))
	b.WriteString(summarySuffix(a))
	return b.String()
}

// summarySuffix says how many events a summary stands for; "" for an alert
// that is not a summary.
func summarySuffix(a *Alert) string {
	switch {
	case !a.Summary:
		return ""
	case a.Count == 1:
		return " [1 more event]"
	}
	return " [" + strconv.Itoa(a.Count) + " more events]"
}

// jsonAlert is the stable JSON form of an alert: the jsonl sink writes it
// and `picoseg status alerts` reads it.
type jsonAlert struct {
	Time      time.Time  `json:"time"`
	Type      Type       `json:"type"`
	Severity  Severity   `json:"severity"`
	Device    string     `json:"device,omitempty"`
	Src       netip.Addr `json:"src,omitzero"`
	Dst       netip.Addr `json:"dst,omitzero"`
	Proto     string     `json:"proto,omitempty"`
	DPort     uint16     `json:"port,omitempty"`
	Layer     string     `json:"layer,omitempty"`
	Rule      string     `json:"rule,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Bytes     uint64     `json:"bytes,omitempty"`
	Count     int        `json:"count"`
	Summary   bool       `json:"summary,omitempty"`
	Message   string     `json:"message"`
	App       string     `json:"app,omitempty"`
	AppName   string     `json:"app_name,omitempty"`
	AppCode   *int       `json:"app_code,omitempty"`
	AppDetail string     `json:"app_detail,omitempty"`
}

// MarshalJSON encodes the alert with names for type, severity and layer.
func (a Alert) MarshalJSON() ([]byte, error) {
	j := jsonAlert{
		Time: a.Time, Type: a.Type, Severity: a.Severity, Device: a.Device, Src: a.Src, Dst: a.Dst,
		Proto: a.Proto, DPort: a.DPort, Rule: a.Rule, Reason: a.Reason, Bytes: a.Bytes,
		Count: a.Count, Summary: a.Summary, Message: a.Message,
	}
	if a.Layer != engine.LayerNone {
		j.Layer = a.Layer.String()
	}
	if a.App != "" {
		j.App, j.AppName, j.AppDetail = a.App, a.AppName, a.AppDetail
		if a.AppCode >= 0 {
			j.AppCode = &a.AppCode
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (a *Alert) UnmarshalJSON(b []byte) error {
	var j jsonAlert
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = Alert{
		Time: j.Time, Type: j.Type, Severity: j.Severity, Device: j.Device, Src: j.Src, Dst: j.Dst,
		Proto: j.Proto, DPort: j.DPort, Rule: j.Rule, Reason: j.Reason, Bytes: j.Bytes,
		Count: j.Count, Summary: j.Summary, Message: j.Message,
		App: j.App, AppName: j.AppName, AppCode: -1, AppDetail: j.AppDetail,
	}
	if j.AppCode != nil {
		a.AppCode = *j.AppCode
	}
	for _, l := range engine.Layers {
		if l.String() == j.Layer {
			a.Layer = l
		}
	}
	return nil
}
