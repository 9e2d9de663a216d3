package config

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Writer writes policy tables ([[group]], [[device]], [[allow]]) as TOML
// text that Load reads back to the same values, each table with the
// comment lines its author gives it. It is what `picoseg learn` and
// `picoseg mud import` write their proposals with: one spelling of every
// value, the policy file's own (services as "tcp/443", sizes as "64KB",
// rates as "10/m"), so that a reviewer reads what they would have written.
//
// The first write error is kept and returned by Err; later writes do
// nothing.
type Writer struct {
	out *output
	// commentedOut writes every line as a comment (CommentedOut).
	commentedOut bool
}

// output is what a Writer and the Writers CommentedOut returns share.
type output struct {
	w   io.Writer
	err error
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{out: &output{w: w}} }

// Err returns the first write error.
func (w *Writer) Err() error { return w.out.err }

// CommentedOut returns a Writer on the same output, and with the same
// error, that writes every line as a comment: a table for a reviewer to
// complete, or to turn on by uncommenting it. Values are quoted as ever,
// so none can end its line: uncommented, each line is the key it was
// written as and nothing more.
func (w *Writer) CommentedOut() *Writer { return &Writer{out: w.out, commentedOut: true} }

func (w *Writer) printf(format string, args ...any) {
	if w.out.err != nil {
		return
	}
	s := fmt.Sprintf(format, args...)
	if w.commentedOut {
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		for i, l := range lines {
			lines[i] = commentLine(l)
		}
		s = strings.Join(lines, "\n") + "\n"
	}
	_, w.out.err = io.WriteString(w.out.w, s)
}

// Comment writes each line as one TOML comment line ("# line"). What
// TOML refuses in a comment, what would end the line or reorder it on a
// reviewer's screen, and what a terminal would act on is written as '?':
// newlines and other control characters (C1's CSI included), Unicode line
// and paragraph separators, format characters such as bidirectional
// overrides, and invalid UTF-8. Text a device or a MUD file chose (a
// hostname, a systeminfo) cannot make the proposal unreadable, become a
// key, or forge a line of its own: a commented-out table a reviewer would
// be tempted to uncomment, say.
func (w *Writer) Comment(lines ...string) {
	for _, l := range lines {
		w.printf("%s\n", commentLine(strings.TrimRight(commentSafe(l), " ")))
	}
}

// commentLine makes one line a comment.
func commentLine(l string) string {
	if l == "" {
		return "#"
	}
	return "# " + l
}

func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\t' && (unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// Blank writes an empty line.
func (w *Writer) Blank() { w.printf("\n") }

// Group writes one [[group]] table, after its comment lines.
func (w *Writer) Group(g Group, comment ...string) {
	w.Comment(comment...)
	w.printf("[[group]]\nname = %s\n", Quote(g.Name))
}

// Device writes one [[device]] table, after its comment lines.
func (w *Writer) Device(d Device, comment ...string) {
	w.Comment(comment...)
	w.printf("[[device]]\nname = %s\n", Quote(d.Name))
	if d.HasMAC {
		w.printf("mac = %s\n", Quote(net.HardwareAddr(d.MAC[:]).String()))
	}
	if len(d.IPs) > 0 {
		ips := make([]string, len(d.IPs))
		for i, a := range d.IPs {
			ips[i] = a.String()
		}
		w.printf("ip = %s\n", quoteList(ips))
	}
	if len(d.Groups) > 0 {
		w.printf("groups = %s\n", quoteList(d.Groups))
	}
}

// Allow writes one [[allow]] table with its pico constraints, after its
// comment lines. Unset constraints are left out, as a person would.
func (w *Writer) Allow(a Allow, comment ...string) {
	s := make([]string, len(a.Services))
	for i, svc := range a.Services {
		s[i] = FormatService(svc)
	}
	w.AllowText(AllowText{Name: a.Name, From: a.From.String(), To: a.To.String(), Services: s}, comment...)
	if len(a.Hours) > 0 {
		h := make([]string, len(a.Hours))
		for i, r := range a.Hours {
			h[i] = FormatTimeRange(r)
		}
		w.printf("hours = %s\n", quoteList(h))
	}
	if a.Days != 0 {
		w.printf("days = %s\n", quoteList(FormatDays(a.Days)))
	}
	if a.PacketSize != nil {
		w.printf("packet_size = \"%d-%d\"\n", a.PacketSize.Min, a.PacketSize.Max)
	}
	if a.MaxFlowBytes > 0 {
		w.printf("max_flow_bytes = %s\n", Quote(FormatSize(a.MaxFlowBytes)))
	}
	if b := a.MaxDeviceBytes; b != nil {
		w.printf("max_device_bytes = { amount = %s, per = %s }\n", Quote(FormatSize(b.Bytes)), Quote(FormatDuration(b.Per)))
	}
	if b := a.MinDeviceBytes; b != nil {
		w.printf("min_device_bytes = { amount = %s, per = %s }\n", Quote(FormatSize(b.Bytes)), Quote(FormatDuration(b.Per)))
	}
	if a.MaxNewFlows.Count > 0 {
		w.printf("max_new_flows = %s\n", Quote(FormatRate(a.MaxNewFlows)))
	}
	if a.FanOut.MaxPeers > 0 {
		w.printf("max_peers = %d\n", a.FanOut.MaxPeers)
	}
	if a.FanOut.MaxPorts > 0 {
		w.printf("max_ports = %d\n", a.FanOut.MaxPorts)
	}
	if a.FanOut.Set() && a.FanOut.Window != DefaultFanOutWindow && a.FanOut.Window > 0 {
		w.printf("fanout_window = %s\n", Quote(FormatDuration(a.FanOut.Window)))
	}
}

// AllowText is an [[allow]] rule's name, endpoints and services as a
// policy file spells them ("group:cams", "dns:api.example.com",
// "tcp/443"): a rule from elsewhere, a MUD file's, whose endpoints this
// build's policy language may not have yet. Whether they are valid is for
// Load to say; the Writer only quotes them, so that none leaves its
// string.
type AllowText struct {
	Name, From, To string
	// Services lists the rule's services; empty is any service, and
	// writes no services key.
	Services []string
}

// AllowText writes one [[allow]] table from its text, after its comment
// lines.
func (w *Writer) AllowText(a AllowText, comment ...string) {
	w.Comment(comment...)
	w.printf("[[allow]]\nname = %s\nfrom = %s\nto = %s\n", Quote(a.Name), Quote(a.From), Quote(a.To))
	if len(a.Services) > 0 {
		w.printf("services = %s\n", quoteList(a.Services))
	}
}

// Quote returns s as a TOML basic string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// FormatService spells a service as a rule's services list does: "any",
// "tcp", "tcp/443", "udp/5000-5010", "icmp", "icmpv6", "proto/47".
func FormatService(s Service) string {
	var name string
	switch s.Proto {
	case 0:
		return "any"
	case protoTCP:
		name = "tcp"
	case protoUDP:
		name = "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	default:
		return "proto/" + strconv.Itoa(int(s.Proto))
	}
	switch {
	case s.PortLo == 0 && s.PortHi == 65535:
		return name
	case s.PortLo == s.PortHi:
		return name + "/" + strconv.Itoa(int(s.PortLo))
	}
	return name + "/" + strconv.Itoa(int(s.PortLo)) + "-" + strconv.Itoa(int(s.PortHi))
}

// FormatTimeRange spells a daily window as "HH:MM-HH:MM" (an end at
// midnight is "24:00").
func FormatTimeRange(r TimeRange) string {
	end := r.End
	if end == 0 && r.Start != 0 {
		end = 24 * 60
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d", r.Start/60, r.Start%60, end/60, end%60)
}

// FormatDays lists the days of w by name, Monday first ("mon", "sat");
// the empty set (every day) gives none.
func FormatDays(w Weekdays) []string {
	var out []string
	for i := 1; i <= 7; i++ {
		d := time.Weekday(i % 7)
		if w&(1<<uint(d)) != 0 {
			out = append(out, dayNames[d])
		}
	}
	return out
}

// FormatSize spells a byte count exactly, in the largest decimal unit
// that divides it ("64KB", "1500B" stays "1500").
func FormatSize(n int64) string {
	for _, u := range []struct {
		name  string
		bytes int64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if n >= u.bytes && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// FormatDuration spells a duration as the policy would: "24h", "1m",
// "90s", "1h30m".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FormatRate spells a rate as "10/s", "600/m", "100/h" or "5/10s".
func FormatRate(r Rate) string {
	switch r.Per {
	case time.Second:
		return strconv.Itoa(r.Count) + "/s"
	case time.Minute:
		return strconv.Itoa(r.Count) + "/m"
	case time.Hour:
		return strconv.Itoa(r.Count) + "/h"
	}
	return strconv.Itoa(r.Count) + "/" + FormatDuration(r.Per)
}
