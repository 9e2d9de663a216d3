package config

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const writeBase = `
[[zone]]
name = "iot"
networks = ["10.77.0.0/24", "fd00:77::/64"]

[[zone]]
name = "wan"
networks = ["0.0.0.0/0", "::/0"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"
`

// TestWriterRoundTrip writes groups, devices and rules with every kind of
// value and reads them back: what the writer spells is what Load parses.
func TestWriterRoundTrip(t *testing.T) {
	groups := []Group{{Name: "plugs"}}
	devices := []Device{
		{Name: "plug-1", HasMAC: true, MAC: [6]byte{2, 0, 0, 0, 0, 0x21}, IPs: []netip.Addr{netip.MustParseAddr("10.77.0.21"), netip.MustParseAddr("fd00:77::21")}, Groups: []string{"plugs"}},
		{Name: "cam.2", IPs: []netip.Addr{netip.MustParseAddr("10.77.0.22")}},
	}
	allows := []Allow{
		{
			Name: "plugs-to-cloud", From: Endpoint{Kind: EndpointGroup, Name: "plugs"},
			To:       Endpoint{Kind: EndpointNet, Prefix: netip.MustParsePrefix("52.49.65.150/32")},
			Services: []Service{{Proto: 6, PortLo: 50443, PortHi: 50443}, {Proto: 17, PortLo: 5000, PortHi: 5010}, {Proto: 6, PortHi: 65535}, {Proto: 1}, {Proto: 58}, {Proto: 47}},
			Hours:    []TimeRange{{Start: 6 * 60, End: 23*60 + 30}, {Start: 22 * 60, End: 24 * 60}},
			Days:     1<<time.Monday | 1<<time.Saturday, PacketSize: &SizeRange{Min: 40, Max: 1500},
			MaxFlowBytes: 64000, MaxDeviceBytes: &Budget{Bytes: 2e9, Per: 24 * time.Hour},
			MinDeviceBytes: &Budget{Bytes: 1234, Per: time.Hour}, MaxNewFlows: Rate{Count: 7, Per: 10 * time.Second},
			FanOut: FanOut{MaxPeers: 3, MaxPorts: 2, Window: 90 * time.Second},
		},
		{Name: "cam-any", From: Endpoint{Kind: EndpointDevice, Name: "cam.2"}, To: Endpoint{Kind: EndpointZone, Name: "iot"}, Services: []Service{{}}},
		{Name: "cam-fanout", From: Endpoint{Kind: EndpointDevice, Name: "cam.2"}, To: Endpoint{Kind: EndpointAny},
			MaxNewFlows: Rate{Count: 600, Per: time.Minute}, FanOut: FanOut{MaxPeers: 4, Window: DefaultFanOutWindow}},
	}
	var b bytes.Buffer
	b.WriteString(writeBase)
	w := NewWriter(&b)
	for _, g := range groups {
		w.Group(g, "a group")
	}
	for _, d := range devices {
		w.Blank()
		w.Device(d, "seen: 3 flows\nkey = \"not a key\"")
	}
	for _, a := range allows {
		w.Blank()
		w.Allow(a, "evidence")
	}
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
	cfg, _, err := Parse("learned.toml", b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	for i := range cfg.Groups {
		cfg.Groups[i].Pos = Pos{}
	}
	for i := range cfg.Devices {
		cfg.Devices[i].Pos = Pos{}
	}
	for i := range cfg.Allows {
		a := &cfg.Allows[i]
		a.Pos, a.From.Pos, a.To.Pos = Pos{}, Pos{}, Pos{}
	}
	if !reflect.DeepEqual(cfg.Groups, groups) {
		t.Errorf("groups:\n got %+v\nwant %+v", cfg.Groups, groups)
	}
	if !reflect.DeepEqual(cfg.Devices, devices) {
		t.Errorf("devices:\n got %+v\nwant %+v", cfg.Devices, devices)
	}
	if len(cfg.Allows) != len(allows) {
		t.Fatalf("%d rules read back, want %d", len(cfg.Allows), len(allows))
	}
	for i := range allows {
		if !reflect.DeepEqual(cfg.Allows[i], allows[i]) {
			t.Errorf("rule %d:\n got %+v\nwant %+v", i, cfg.Allows[i], allows[i])
		}
	}
	if strings.Contains(b.String(), "\nkey = ") {
		t.Errorf("a comment line became a key:\n%s", b.String())
	}
}

func TestFormatValues(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{FormatSize(64000), "64KB"}, {FormatSize(1500), "1500"}, {FormatSize(2e9), "2GB"}, {FormatSize(1001), "1001"},
		{FormatDuration(24 * time.Hour), "24h"}, {FormatDuration(time.Minute), "1m"}, {FormatDuration(90 * time.Second), "1m30s"},
		{FormatDuration(90 * time.Minute), "1h30m"},
		{FormatRate(Rate{Count: 10, Per: time.Minute}), "10/m"}, {FormatRate(Rate{Count: 5, Per: 10 * time.Second}), "5/10s"},
		{FormatTimeRange(TimeRange{Start: 22 * 60, End: 0}), "22:00-24:00"}, {FormatTimeRange(TimeRange{Start: 0, End: 6 * 60}), "00:00-06:00"},
		{Quote("a\"b\\c\n"), `"a\"b\\c\u000A"`},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestWriterComment: each line given is one comment line, whatever it
// holds; what could end it, reorder it on screen or drive a terminal is
// written as '?', and other text is kept.
func TestWriterComment(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"newline", "x\n[[allow]]", "# x?[[allow]]\n"},
		{"carriage return", "x\r[[allow]]", "# x?[[allow]]\n"},
		{"escape sequence", "x\x1b[2Jy", "# x?[2Jy\n"},
		{"C1 CSI", "x\u009b2Jy", "# x?2Jy\n"},
		{"bidirectional override", "x\u202eyz", "# x?yz\n"},
		{"line separator", "x\u2028[[allow]]", "# x?[[allow]]\n"},
		{"paragraph separator", "x\u2029y", "# x?y\n"},
		{"zero width space", "x\u200by", "# x?y\n"},
		{"invalid UTF-8", "x\xffy", "# x?y\n"},
		{"tab and text", "Bücher GmbH\tplug", "# Bücher GmbH\tplug\n"},
		{"empty", "", "#\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			NewWriter(&b).Comment(tc.in)
			if b.String() != tc.want {
				t.Errorf("Comment(%q) (-want +got):\n-%q\n+%q", tc.in, tc.want, b.String())
			}
		})
	}
}

// TestWriterCommentedOut writes a device and a rule commented out: the
// policy has neither, and with the comment marks removed it has both, as
// written.
func TestWriterCommentedOut(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Group(Group{Name: "plugs"})
	w.Comment("complete and uncomment")
	out := w.CommentedOut()
	out.Blank()
	out.Device(Device{Name: "plug-1", HasMAC: true, MAC: [6]byte{2, 0, 0, 0, 0, 0x21}, Groups: []string{"plugs"}})
	out.AllowText(AllowText{Name: "plugs-dns", From: "group:plugs", To: "zone:wan", Services: []string{"udp/53", "tcp/443"}}, "why")
	if w.Err() != nil || out.Err() != nil {
		t.Fatal(w.Err(), out.Err())
	}
	text := b.String()
	want := "[[group]]\nname = \"plugs\"\n# complete and uncomment\n#\n# [[device]]\n# name = \"plug-1\"\n# mac = \"02:00:00:00:00:21\"\n# groups = [\"plugs\"]\n" +
		"# # why\n# [[allow]]\n# name = \"plugs-dns\"\n# from = \"group:plugs\"\n# to = \"zone:wan\"\n# services = [\"udp/53\", \"tcp/443\"]\n"
	if text != want {
		t.Fatalf("(-want +got):\n-%s\n+%s", want, text)
	}
	cfg, _, err := Parse("out.toml", []byte(writeBase+text))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) != 0 || len(cfg.Allows) != 0 {
		t.Fatalf("commented out, yet %d devices and %d rules were read", len(cfg.Devices), len(cfg.Allows))
	}
	uncommented := strings.NewReplacer("\n# [[", "\n[[", "\n# name", "\nname", "\n# mac", "\nmac", "\n# groups", "\ngroups",
		"\n# from", "\nfrom", "\n# to", "\nto", "\n# services", "\nservices").Replace(text)
	cfg, _, err = Parse("on.toml", []byte(writeBase+uncommented))
	if err != nil {
		t.Fatalf("%v\n%s", err, uncommented)
	}
	if len(cfg.Devices) != 1 || cfg.Devices[0].Name != "plug-1" || len(cfg.Allows) != 1 || cfg.Allows[0].To.String() != "zone:wan" ||
		!reflect.DeepEqual(cfg.Allows[0].Services, []Service{{Proto: 17, PortLo: 53, PortHi: 53}, {Proto: 6, PortLo: 443, PortHi: 443}}) {
		t.Errorf("uncommented, read back %+v and %+v\n%s", cfg.Devices, cfg.Allows, uncommented)
	}
}

// FuzzWriterComment writes a rule whose name and comment are arbitrary,
// and the same rule commented out: the text always parses to the one
// active rule, a comment is one line and never becomes a key or a table,
// every line of the commented-out rule is a comment, and a valid name
// reads back as written.
func FuzzWriterComment(f *testing.F) {
	f.Add("cams-to-nvr", "learned from 3 flows")
	f.Add("x", "line\n[[allow]]\nname = \"evil\"\nfrom = \"any\"\nto = \"any\"")
	f.Add("a.b_c", "\r\n# \x00\u2028 services = [\"any\"]")
	f.Add("x\"\n[[allow]]\nname = \"evil", "\u202e\u009b")
	f.Fuzz(func(t *testing.T, name, comment string) {
		var b bytes.Buffer
		b.WriteString(writeBase)
		w := NewWriter(&b)
		w.CommentedOut().AllowText(AllowText{Name: name, From: name, To: "dns:" + name, Services: []string{name}}, comment)
		for _, l := range strings.Split(strings.TrimSuffix(b.String()[len(writeBase):], "\n"), "\n") {
			if !strings.HasPrefix(l, "#") {
				t.Fatalf("a line of a commented-out rule is not a comment: %q\n%s", l, b.String())
			}
		}
		if !validName(name) {
			return
		}
		mark := b.Len()
		w.Allow(Allow{Name: name, From: Endpoint{Kind: EndpointZone, Name: "iot"}, To: Endpoint{Kind: EndpointZone, Name: "wan"},
			Services: []Service{{Proto: 6, PortLo: 443, PortHi: 443}}}, comment)
		if got := strings.Count(b.String()[mark:], "\n#"); !strings.HasPrefix(b.String()[mark:], "#") || got != 0 {
			t.Fatalf("the comment is not one line:\n%s", b.String()[mark:])
		}
		cfg, _, err := Parse("fuzz.toml", b.Bytes())
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		if len(cfg.Allows) != 1 || cfg.Allows[0].Name != name || len(cfg.Allows[0].Services) != 1 {
			t.Fatalf("read back %+v\n%s", cfg.Allows, b.String())
		}
	})
}
