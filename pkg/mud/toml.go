package mud

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteTOML writes the proposal as policy text. base, when not nil, is the
// text of the policy it merges into, written first and unchanged: the
// proposal only adds groups, a device and rules to it.
//
// Everything the MUD file chose (names, URLs, descriptions) reaches the
// output only inside quoted strings or as comments stripped of control
// characters: a newline in a systeminfo must not start a rule.
func (p *Proposal) WriteTOML(w io.Writer, base []byte) error {
	bw := bufio.NewWriter(w)
	if len(base) > 0 {
		bw.Write(base)
		if base[len(base)-1] != '\n' {
			bw.WriteByte('\n')
		}
		bw.WriteByte('\n')
	}
	p.writeHeader(bw)
	if p.NewGroup {
		fmt.Fprintf(bw, "\n# the devices this MUD file describes\n[[group]]\nname = %s\n", quote(p.Group))
	}
	for _, g := range p.Groups {
		fmt.Fprintf(bw, "\n# %s\n[[group]]\nname = %s\n", comment(g.Why), quote(g.Name))
	}
	p.writeDevice(bw)
	for _, r := range p.Rules {
		writeRule(bw, r)
	}
	return bw.Flush()
}

func (p *Proposal) writeHeader(w *bufio.Writer) {
	f := p.File
	w.WriteString("# Imported from a MUD file (RFC 8520) by picoseg mud import: review before use.\n")
	for _, kv := range [][2]string{{"MUD URL", f.URL}, {"systeminfo", f.SystemInfo}, {"manufacturer", f.Manufacturer}, {"model", f.Model}} {
		if kv[1] != "" {
			fmt.Fprintf(w, "# %s: %s\n", kv[0], comment(kv[1]))
		}
	}
	fmt.Fprintf(w, "# form: %s\n", f.Form)
	if len(p.Problems) > 0 {
		fmt.Fprintf(w, "# NOT REPRESENTED (%d): the rules they touch are written commented out below\n", len(p.Problems))
		for _, pr := range p.Problems {
			fmt.Fprintf(w, "#   - %s\n", comment(pr.String()))
		}
	}
	if len(p.Notes) > 0 {
		w.WriteString("# notes:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(w, "#   - %s\n", comment(n))
		}
	}
}

func (p *Proposal) writeDevice(w *bufio.Writer) {
	d := p.Device
	if d.MAC == "" && len(d.IPs) == 0 {
		fmt.Fprintf(w, "\n# A MUD file describes a model, not a device: complete (mac and/or ip) and uncomment.\n")
		fmt.Fprintf(w, "# [[device]]\n# name = %s\n# mac = \"02:00:00:00:00:00\"\n# groups = [%s]\n", quote(d.Name), quote(p.Group))
		return
	}
	fmt.Fprintf(w, "\n[[device]]\nname = %s\n", quote(d.Name))
	if d.MAC != "" {
		fmt.Fprintf(w, "mac = %s\n", quote(d.MAC))
	}
	if len(d.IPs) > 0 {
		fmt.Fprintf(w, "ip = %s\n", quoteList(d.IPs))
	}
	fmt.Fprintf(w, "groups = [%s]\n", quote(p.Group))
}

func writeRule(w *bufio.Writer, r Rule) {
	w.WriteByte('\n')
	for _, e := range r.Evidence {
		fmt.Fprintf(w, "# MUD %s\n", comment(e))
	}
	prefix := ""
	if r.Disabled != "" {
		fmt.Fprintf(w, "# NOT ACTIVE: %s\n", comment(r.Disabled))
		prefix = "# "
	}
	fmt.Fprintf(w, "%s[[allow]]\n%sname = %s\n%sfrom = %s\n%sto = %s\n%sservices = %s\n",
		prefix, prefix, quote(r.Name), prefix, quote(r.From), prefix, quote(r.To), prefix, quoteList(r.Services))
}

// comment makes s safe inside a one-line TOML comment.
func comment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
