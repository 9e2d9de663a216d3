package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// MaxEvents bounds the events a Report keeps; the rest are only counted.
const MaxEvents = 10000

// Report is what a replay found. Its JSON form is what `picoseg replay
// --json` prints.
type Report struct {
	Packets       uint64                 `json:"packets"`
	Undecodable   uint64                 `json:"undecodable"`
	NotIP         uint64                 `json:"not_ip"`
	Flows         uint64                 `json:"flows"`
	AcceptedFlows uint64                 `json:"accepted_flows"`
	DroppedFlows  uint64                 `json:"dropped_flows"`
	ByLayer       map[string]*LayerCount `json:"by_layer"`
	Devices       []*DeviceSummary       `json:"devices"`
	Events        []Event                `json:"events"`
	EventsTotal   uint64                 `json:"events_total"`
	Captures      []CaptureSummary       `json:"captures"`
	// Apps lists the flows whose application was identified, in the order
	// they were, with the name each carried (server name, host).
	Apps []AppFlow `json:"apps,omitempty"`

	devByID   map[int32]*DeviceSummary
	devByAddr map[netip.Addr]*DeviceSummary
}

// LayerCount counts what one layer decided.
type LayerCount struct {
	Flows         uint64 `json:"flows"`
	AcceptedFlows uint64 `json:"accepted_flows"`
	DroppedFlows  uint64 `json:"dropped_flows"`
	Packets       uint64 `json:"packets"`
	Dropped       uint64 `json:"dropped_packets"`
}

// DeviceSummary is what one source (a known device, or an unknown address)
// did.
type DeviceSummary struct {
	Device       string `json:"device,omitempty"`
	Addr         string `json:"addr,omitempty"`
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	Flows        uint64 `json:"flows"`
	DroppedFlows uint64 `json:"dropped_flows"`
}

// Event is an engine event in report form.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Device string    `json:"device"`
	Layer  string    `json:"layer"`
	Rule   string    `json:"rule"`
	Reason string    `json:"reason"`
	Src    string    `json:"src"`
	Dst    string    `json:"dst"`
	Proto  string    `json:"proto"`
	DPort  uint16    `json:"dport"`
	Bytes  uint64    `json:"bytes,omitempty"`
	// App, AppName, AppCode and AppDetail describe an app_* event's
	// application (engine.EventApp); AppCode is a Modbus function code
	// or the like, absent when the check reported none.
	App       string `json:"app,omitempty"`
	AppName   string `json:"app_name,omitempty"`
	AppCode   *int   `json:"app_code,omitempty"`
	AppDetail string `json:"app_detail,omitempty"`
}

// AppFlow is one flow whose application was identified.
type AppFlow struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Rule string `json:"rule"`
	App  string `json:"app"`
	Name string `json:"name,omitempty"`
}

// CaptureSummary says how reading one capture went.
type CaptureSummary struct {
	File    string `json:"file"`
	Packets uint64 `json:"packets"`
	// Error is set when the capture was damaged or unreadable; packets
	// read before the damage were still judged.
	Error string `json:"error,omitempty"`
}

// Runner replays captures through one engine.
type Runner struct {
	eng    *engine.Engine
	worker *engine.Worker
	report *Report
	pkt    packet.Packet
	sweep  int64
	last   int64 // the latest capture timestamp seen
	// identified are the flows already listed in Report.Apps.
	identified map[flow.Key]bool
}

// New returns a Runner judging with pol in a fresh engine.
func New(pol *policy.Policy) *Runner {
	r := &Runner{report: newReport(), identified: map[flow.Key]bool{}}
	r.eng = engine.New(pol, engine.Options{Sink: engine.SinkFunc(r.emit)})
	r.worker = r.eng.NewWorker()
	return r
}

func newReport() *Report {
	rep := &Report{ByLayer: map[string]*LayerCount{}, devByID: map[int32]*DeviceSummary{}, devByAddr: map[netip.Addr]*DeviceSummary{}}
	for _, l := range engine.Layers {
		rep.ByLayer[l.String()] = &LayerCount{}
	}
	return rep
}

// Engine returns the runner's engine.
func (r *Runner) Engine() *engine.Engine { return r.eng }

// File replays one capture file. A damaged capture is recorded in the
// report, not returned: what was read before the damage counts. The error
// is for files that cannot be opened or recognised at all.
func (r *Runner) File(path string) error {
	rd, err := capture.Open(path)
	if err != nil {
		r.report.Captures = append(r.report.Captures, CaptureSummary{File: path, Error: err.Error()})
		return err
	}
	defer rd.Close()
	return r.read(path, rd)
}

// Reader replays one capture from an open stream.
func (r *Runner) Reader(name string, in io.Reader) error {
	rd, err := capture.NewReader(in)
	if err != nil {
		r.report.Captures = append(r.report.Captures, CaptureSummary{File: name, Error: err.Error()})
		return err
	}
	return r.read(name, rd)
}

func (r *Runner) read(name string, rd *capture.Reader) error {
	sum := CaptureSummary{File: name}
	for {
		ts, err := rd.Next(&r.pkt)
		if err == io.EOF {
			break
		}
		if errors.Is(err, capture.ErrUnsupportedLink) {
			// One packet of a link type we cannot decode: Next left it
			// marked malformed, so it is judged (dropped) and counted as
			// undecodable like any other.
			err = nil
		}
		if err != nil {
			// A damaged capture (capture.CorruptError) ends here; what was
			// read before it has been judged and stays in the report.
			sum.Error = err.Error()
			break
		}
		sum.Packets++
		// pcapng's simple packet blocks carry no time: they happened
		// when the packet before them did, as far as we can know.
		if !ts.IsZero() {
			r.last = ts.UnixNano()
		}
		r.Packet(&r.pkt, r.last)
	}
	r.report.Captures = append(r.report.Captures, sum)
	return nil
}

// Packet judges one decoded packet at now and counts it.
func (r *Runner) Packet(p *packet.Packet, now int64) engine.Decision {
	if now >= r.sweep {
		r.eng.Sweep(now)
		r.sweep = now + int64(time.Second)
	}
	d := r.worker.Judge(p, now, engine.NoMeta)
	rep := r.report
	rep.Packets++
	switch {
	case p.Kind == packet.KindNotIP:
		rep.NotIP++
		return d
	case d.Layer == engine.LayerDecode:
		rep.Undecodable++
	}
	if d.Reason == engine.ReasonAppIdentified {
		r.noteApp(p, d)
	}
	lc := rep.ByLayer[d.Layer.String()]
	dropped := d.Verdict == engine.Drop || d.WouldDrop
	lc.Packets++
	if dropped {
		lc.Dropped++
	}
	// A flow, and each of its packets, is credited to the side that
	// opened it: a reply's sender is the flow's responder.
	opener := p.Src
	if d.Reply {
		opener = p.Dst
	}
	dev := rep.device(r.eng.Policy(), d.SrcDevice, opener)
	dev.Packets++
	dev.Bytes += uint64(p.Length)
	if d.NewFlow {
		rep.Flows++
		lc.Flows++
		dev.Flows++
		if dropped {
			rep.DroppedFlows++
			lc.DroppedFlows++
			dev.DroppedFlows++
		} else {
			rep.AcceptedFlows++
			lc.AcceptedFlows++
		}
	}
	return d
}

// noteApp lists a flow in Report.Apps the first time its application is
// identified.
func (r *Runner) noteApp(p *packet.Packet, d engine.Decision) {
	key, _ := flow.KeyOf(p)
	if r.identified[key] {
		return
	}
	proto, name, ok := r.eng.AppOf(key)
	if !ok {
		return
	}
	r.identified[key] = true
	src, dst := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	if d.Reply {
		src, dst = dst, src
	}
	r.report.Apps = append(r.report.Apps, AppFlow{Src: src.String(), Dst: dst.String(), Rule: d.RuleName(r.eng.Policy()), App: proto.String(), Name: name})
}

func (rep *Report) device(pol *policy.Policy, id int32, addr netip.Addr) *DeviceSummary {
	if id != policy.None {
		if d, ok := rep.devByID[id]; ok {
			return d
		}
		d := &DeviceSummary{Device: pol.DeviceName(id)}
		rep.devByID[id] = d
		rep.Devices = append(rep.Devices, d)
		return d
	}
	if d, ok := rep.devByAddr[addr]; ok {
		return d
	}
	d := &DeviceSummary{Addr: addr.String()}
	rep.devByAddr[addr] = d
	rep.Devices = append(rep.Devices, d)
	return d
}

func (r *Runner) emit(e engine.Event) {
	rep := r.report
	rep.EventsTotal++
	if len(rep.Events) >= MaxEvents {
		return
	}
	rep.Events = append(rep.Events, Event{
		Time: time.Unix(0, e.Time).UTC(), Type: e.Type.String(), Device: e.Device, Layer: e.Layer.String(),
		Rule: e.Rule, Reason: e.Reason.String(), Src: addrString(e.Src), Dst: addrString(e.Dst),
		Proto: packet.ProtoName(e.Proto), DPort: e.DPort, Bytes: e.Bytes,
	})
	if e.App.Proto != 0 {
		ev := &rep.Events[len(rep.Events)-1]
		ev.App, ev.AppName, ev.AppDetail = e.App.Proto.String(), e.App.Name(), e.App.Detail
		if e.App.Code >= 0 {
			code := e.App.Code
			ev.AppCode = &code
		}
	}
}

// appText describes an app_* event's application for the text report.
func appText(e *Event) string {
	if e.App == "" {
		return ""
	}
	s := " [" + e.App
	if e.AppName != "" {
		s += " " + strconv.Quote(e.AppName)
	}
	if e.AppCode != nil {
		s += " code " + strconv.Itoa(*e.AppCode)
	}
	if e.AppDetail != "" {
		s += ": " + e.AppDetail
	}
	return s + "]"
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Report returns the summary so far, devices sorted by packets.
func (r *Runner) Report() *Report {
	sort.SliceStable(r.report.Devices, func(i, j int) bool { return r.report.Devices[i].Packets > r.report.Devices[j].Packets })
	return r.report
}

// WriteJSON writes the report as one JSON object.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// WriteText writes the report as aligned tables for people.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "packets %d  undecodable %d  not-ip %d  flows %d  accepted %d  dropped %d\n\n",
		rep.Packets, rep.Undecodable, rep.NotIP, rep.Flows, rep.AcceptedFlows, rep.DroppedFlows)
	for _, c := range rep.Captures {
		if c.Error != "" {
			fmt.Fprintf(tw, "capture %s: %d packets read, then: %s\n", c.File, c.Packets, c.Error)
		}
	}
	fmt.Fprintln(tw, "LAYER\tFLOWS\tACCEPTED\tDROPPED\tPACKETS\tDROPPED PKTS")
	for _, l := range engine.Layers {
		c := rep.ByLayer[l.String()]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", l, c.Flows, c.AcceptedFlows, c.DroppedFlows, c.Packets, c.Dropped)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DEVICE\tPACKETS\tBYTES\tFLOWS\tDROPPED FLOWS")
	for i, d := range rep.Devices {
		if i == 20 {
			fmt.Fprintf(tw, "... %d more sources\t\t\t\t\n", len(rep.Devices)-20)
			break
		}
		name := d.Device
		if name == "" {
			name = d.Addr + " (unknown)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", name, d.Packets, d.Bytes, d.Flows, d.DroppedFlows)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "EVENTS (%d)\n", rep.EventsTotal)
	for i, e := range rep.Events {
		if i == 50 {
			fmt.Fprintf(tw, "... %d more (use --json for all)\n", rep.EventsTotal-50)
			break
		}
		dev := e.Device
		if dev == "" {
			dev = "-"
		}
		rule := e.Rule
		if rule == "" {
			rule = "-"
		}
		dst := e.Dst
		if e.Proto == "tcp" || e.Proto == "udp" {
			// Ports only where there are ports; [v6]:port like the net package.
			if a, err := netip.ParseAddr(e.Dst); err == nil {
				dst = netip.AddrPortFrom(a, e.DPort).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s -> %s\t%s\t%s%s\n", e.Type, dev, e.Layer, e.Proto, e.Src, dst, rule, e.Reason, appText(&e))
	}
	if len(rep.Apps) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "APPLICATIONS (%d flows identified)\n", len(rep.Apps))
		fmt.Fprintln(tw, "APP\tNAME\tFROM\tTO\tRULE")
		for i, a := range rep.Apps {
			if i == 50 {
				fmt.Fprintf(tw, "... %d more (use --json for all)\n", len(rep.Apps)-50)
				break
			}
			name := a.Name
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.App, name, a.Src, a.Dst, a.Rule)
		}
	}
	return tw.Flush()
}
