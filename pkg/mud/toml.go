package mud

import (
	"bufio"
	"fmt"
	"io"

	"github.com/picoseg/picoseg/pkg/config"
)

// WriteTOML writes the proposal as policy text. base, when not nil, is the
// text of the policy it merges into, written first and unchanged: the
// proposal only adds groups, a device and rules to it.
//
// The text is written by config.Writer, as `picoseg learn` writes its
// own: everything the MUD file chose (names, URLs, descriptions) reaches
// the output only inside quoted strings or as one-line comments stripped
// of control characters: a newline in a systeminfo must not start a rule,
// nor forge a commented-out one for the reviewer to uncomment.
func (p *Proposal) WriteTOML(w io.Writer, base []byte) error {
	dev, err := p.Device.config(p.Group)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	if len(base) > 0 {
		bw.Write(base)
		if base[len(base)-1] != '\n' {
			bw.WriteByte('\n')
		}
		bw.WriteByte('\n')
	}
	tw := config.NewWriter(bw)
	p.writeHeader(tw)
	if p.NewGroup {
		tw.Blank()
		tw.Group(config.Group{Name: p.Group}, "the devices this MUD file describes")
	}
	for _, g := range p.Groups {
		tw.Blank()
		tw.Group(config.Group{Name: g.Name}, g.Why)
	}
	tw.Blank()
	if dev.HasMAC || len(dev.IPs) > 0 {
		tw.Device(dev)
	} else {
		// A locally administered placeholder, for the reviewer to replace.
		dev.HasMAC, dev.MAC = true, [6]byte{0x02}
		tw.Comment("A MUD file describes a model, not a device: complete (mac and/or ip) and uncomment.")
		tw.CommentedOut().Device(dev)
	}
	for _, r := range p.Rules {
		tw.Blank()
		writeRule(tw, r)
	}
	if err := tw.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

func (p *Proposal) writeHeader(w *config.Writer) {
	f := p.File
	lines := []string{"Imported from a MUD file (RFC 8520) by picoseg mud import: review before use."}
	for _, kv := range [][2]string{{"MUD URL", f.URL}, {"systeminfo", f.SystemInfo}, {"manufacturer", f.Manufacturer}, {"model", f.Model}} {
		if kv[1] != "" {
			lines = append(lines, kv[0]+": "+kv[1])
		}
	}
	lines = append(lines, "form: "+f.Form.String())
	if len(p.Problems) > 0 {
		lines = append(lines, fmt.Sprintf("NOT REPRESENTED (%d): the rules they touch are written commented out below", len(p.Problems)))
		for _, pr := range p.Problems {
			lines = append(lines, "  - "+pr.String())
		}
	}
	if len(p.Notes) > 0 {
		lines = append(lines, "notes:")
		for _, n := range p.Notes {
			lines = append(lines, "  - "+n)
		}
	}
	w.Comment(lines...)
}

// writeRule writes r after the MUD entries it comes from; a disabled rule
// is written commented out, after a "NOT ACTIVE:" line saying why.
func writeRule(w *config.Writer, r Rule) {
	lines := make([]string, 0, len(r.Evidence)+1)
	for _, e := range r.Evidence {
		lines = append(lines, "MUD "+e)
	}
	a := config.AllowText{Name: r.Name, From: r.From, To: r.To, Services: r.Services}
	if r.Disabled == "" {
		w.AllowText(a, lines...)
		return
	}
	w.Comment(append(lines, "NOT ACTIVE: "+r.Disabled)...)
	w.CommentedOut().AllowText(a)
}
