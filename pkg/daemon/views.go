package daemon

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/flow"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/packet"
)

// View is one thing `picoseg status` shows: what it asks the status socket
// for, and how it prints the answer for people.
type View struct {
	// Name is the view's name on the command line.
	Name string
	// Fetch asks the daemon listening on the socket at path for the view.
	// arg is the view's argument: the device to show the flows of ("" for
	// all); the other views take none.
	Fetch func(path, arg string) (Answer, error)
}

// Answer is what a view fetched: Value to print as JSON, WriteText to
// print it for people.
type Answer struct {
	Value     any
	WriteText func(io.Writer) error
}

// Views returns the views of `picoseg status`, the default first. The
// status socket's handlers answer their requests.
func Views() []View {
	return []View{
		viewOf("status", requestOnly("status"), func(w io.Writer, s Status) error { return s.WriteText(w) }),
		viewOf("flows", func(device string) string { return strings.TrimSpace("flows " + device) }, WriteFlows),
		viewOf("alerts", requestOnly("alerts"), WriteAlerts),
		viewOf("devices", requestOnly("devices"), WriteDevices),
	}
}

// ViewNamed returns the view called name.
func ViewNamed(name string) (View, error) {
	views := Views()
	names := make([]string, len(views))
	for i, v := range views {
		if v.Name == name {
			return v, nil
		}
		names[i] = v.Name
	}
	return View{}, fmt.Errorf("unknown view %q: want %s or %s", name, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// viewOf is the view name that sends request(arg) and decodes the answer
// into a T, which write prints.
func viewOf[T any](name string, request func(arg string) string, write func(io.Writer, T) error) View {
	return View{Name: name, Fetch: func(path, arg string) (Answer, error) {
		var v T
		if err := Query(path, request(arg), &v); err != nil {
			return Answer{}, err
		}
		return Answer{Value: v, WriteText: func(w io.Writer) error { return write(w, v) }}, nil
	}}
}

// requestOnly is the request of a view that takes no argument.
func requestOnly(request string) func(string) string {
	return func(string) string { return request }
}

// StatusSocket is the status socket `picoseg status` asks: override when
// set, else the one the policy at configPath names, else the default.
func StatusSocket(override, configPath string) string {
	if override != "" {
		return override
	}
	if cfg, _, err := config.Load(configPath); err == nil {
		return cfg.Daemon.Socket
	}
	return config.DefaultSocket
}

// FlowView is one flow of the daemon's flow table, for `picoseg status
// flows`. Src opened the flow.
type FlowView struct {
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	Proto     string    `json:"proto"`
	SrcDevice string    `json:"src_device,omitempty"`
	DstDevice string    `json:"dst_device,omitempty"`
	Verdict   string    `json:"verdict"`
	Layer     string    `json:"layer"`
	Rule      string    `json:"rule,omitempty"`
	Packets   uint32    `json:"packets"`
	Bytes     uint64    `json:"bytes"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// App and AppName are the application identified for the flow and
	// the name it carried (server name, host), while the engine
	// remembers them.
	App     string `json:"app,omitempty"`
	AppName string `json:"app_name,omitempty"`
}

// flowViews lists the flows userspace knows, newest first, at most limit,
// only those of device when it is not "".
func flowViews(eng *engine.Engine, now time.Time, device string, limit int) []FlowView {
	pol := eng.Policy()
	var out []FlowView
	eng.Flows().Range(now.UnixNano(), func(k flow.Key, st flow.State) bool {
		a, b := k.Endpoints()
		if !st.FromA {
			a, b = b, a
		}
		v := FlowView{
			Src: a.String(), Dst: b.String(), Proto: packet.ProtoName(k.Proto),
			SrcDevice: pol.DeviceName(st.SrcDevice), DstDevice: pol.DeviceName(st.DstDevice),
			Verdict: engine.Verdict(st.Verdict).String(), Layer: engine.Layer(st.Layer).String(),
			Packets: st.Packets, Bytes: st.Bytes,
			FirstSeen: time.Unix(0, st.First), LastSeen: time.Unix(0, st.Last),
		}
		if int(st.Layer) == int(engine.LayerSegment) && st.Rule >= 0 && int(st.Rule) < len(pol.Segments) {
			v.Rule = pol.Segments[st.Rule].Name()
		} else if st.Rule >= 0 && int(st.Rule) < len(pol.Rules) && st.Layer >= uint8(engine.LayerMicro) {
			v.Rule = pol.Rules[st.Rule].Name
		}
		if a.Port() == 0 && b.Port() == 0 {
			v.Src, v.Dst = a.Addr().String(), b.Addr().String()
		}
		if proto, name, ok := eng.AppOf(k); ok {
			v.App, v.AppName = proto.String(), name
		}
		if device == "" || v.SrcDevice == device || v.DstDevice == device {
			out = append(out, v)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// WriteFlows prints flows as a table that fits 80 columns.
func WriteFlows(w io.Writer, flows []FlowView) error {
	tw := tabwriter.NewWriter(w, 0, 2, 1, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tPROTO\tVERDICT\tLAYER\tRULE\tPKTS\tBYTES")
	for _, f := range flows {
		from, to := f.Src, f.Dst
		if f.SrcDevice != "" {
			from = f.SrcDevice + portOf(f.Src)
		}
		if f.DstDevice != "" {
			to = f.DstDevice + portOf(f.Dst)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", clip(from, 21), clip(to, 21), f.Proto, f.Verdict, f.Layer, clip(orDash(f.Rule), 14), f.Packets, human(f.Bytes))
		if f.App != "" {
			// The application on a line of its own: the table stays
			// within 80 columns.
			fmt.Fprintf(tw, "  %s %s\t\t\t\t\t\t\t\n", f.App, clip(f.AppName, 60))
		}
	}
	return tw.Flush()
}

// WriteAlerts prints recent alerts, oldest first, each on two lines that
// fit 80 columns: when, what type, which device and how many events it
// stands for, then its message.
func WriteAlerts(w io.Writer, alerts []alert.Alert) error {
	for _, a := range alerts {
		dev := a.Device
		if dev == "" && a.Src.IsValid() {
			dev = a.Src.String()
		}
		head := fmt.Sprintf("%s %s %s", a.Time.Format("15:04:05"), a.Type, orDash(dev))
		if a.Count > 1 {
			head += fmt.Sprintf(" (x%d)", a.Count)
		}
		what := a.Message
		if what == "" {
			what = a.Reason
		}
		if _, err := fmt.Fprintf(w, "%s\n  %s\n", clip(head, 80), clip(what, 78)); err != nil {
			return err
		}
	}
	return nil
}

// WriteDevices prints the device inventory in 80 columns.
func WriteDevices(w io.Writer, devices []inventory.Device) error {
	tw := tabwriter.NewWriter(w, 0, 2, 1, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tADDRESS\tZONE\tHOSTNAME\tLAST SEEN\tUP\tDOWN")
	for _, d := range devices {
		name := d.Name
		if name == "" {
			name = "(" + orDash(d.MAC) + ")"
		}
		addr := "-"
		if len(d.Addrs) > 0 {
			addr = d.Addrs[len(d.Addrs)-1]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clip(name, 19), clip(addr, 15), clip(orDash(d.Zone), 6),
			clip(orDash(d.Hostname), 12), d.LastSeen.Format("01-02 15:04"), human(d.BytesUp), human(d.BytesDown))
	}
	return tw.Flush()
}

func portOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Port() != 0 {
		return fmt.Sprintf(":%d", ap.Port())
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "~"
}

func human(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d", b)
}
