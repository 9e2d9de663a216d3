package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// errorLines parses src as policy.toml and returns its errors one per line.
func errorLines(t *testing.T, src string) []string {
	t.Helper()
	cfg, _, err := Parse("policy.toml", []byte(src))
	if err == nil {
		t.Fatalf("Parse accepted the policy, want errors")
	}
	if cfg != nil {
		t.Errorf("Parse returned a Config along with errors")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList", err)
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// TOML itself.
		{
			name: "syntax error",
			src:  "[daemon]\nmode = \"enforce\nqueues = 2\n",
			want: []string{`policy.toml:2:16: syntax error: strings cannot contain newlines`},
		},
		{
			name: "key defined twice",
			src:  "[daemon]\nqueues = 2\nqueues = 3\n",
			want: []string{`policy.toml:3:1: syntax error: Key 'daemon.queues' has already been defined.`},
		},
		{
			name: "syntax error at the end of the file",
			src:  "b = 0x",
			want: []string{`policy.toml:1:5: syntax error: not a hexadecimal number: '0x\x00'`},
		},
		{
			name: "byte order mark does not shift columns",
			src:  "\ufeff[daemon] \nqueues = 0\n",
			want: []string{`policy.toml:2:10: queues must be 1-64, not 0`},
		},
		// Unknown keys, wherever they are.
		{
			name: "unknown top-level key",
			src:  "zones = []\n",
			want: []string{`policy.toml:1:1: unknown key "zones"`},
		},
		{
			name: "unknown top-level table",
			src:  "[deamon]\nmode = \"monitor\"\n",
			want: []string{`policy.toml:1:2: unknown key "deamon"`},
		},
		{
			name: "unknown key in daemon",
			src:  "[daemon]\n  mood = \"monitor\"\n",
			want: []string{`policy.toml:2:3: unknown key "mood" in [daemon]`},
		},
		{
			name: "unknown key in the third allow rule",
			src: allowPolicy(`from = "any"
to = "any"

[[allow]]
name = "b"
from = "any"
to = "device:nvr"

[[allow]]
name = "c"
from = "any"
to = "group:cameras"
srvices = ["tcp/22"]
`),
			want: []string{`policy.toml:27:1: unknown key "srvices" in [[allow]]`},
		},
		{
			name: "unknown key in an inline budget",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\nmax_device_bytes = { amount = \"1GB\", pre = \"1h\" }\n"),
			want: []string{
				`policy.toml:17:20: missing key "per" in max_device_bytes`,
				`policy.toml:17:38: unknown key "pre" in max_device_bytes`,
			},
		},
		{
			name: "unknown sub-table of an allow rule",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\n[allow.extra]\nx = 1\n"),
			want: []string{`policy.toml:17:8: unknown key "extra" in [[allow]]`},
		},
		// Wrong types.
		{
			name: "string where an integer belongs",
			src:  "[daemon]\nqueues = \"4\"\n",
			want: []string{`policy.toml:2:10: queues: expected integer, got string`},
		},
		{
			name: "array element of the wrong type",
			src:  "[[zone]]\nname = \"iot\"\nnetworks = [\"10.0.0.0/8\", 10]\n",
			want: []string{`policy.toml:3:27: networks[1]: expected string, got integer`},
		},
		{
			name: "string where an array belongs",
			src:  "[[device]]\nname = \"cam\"\nip = \"10.0.0.1\"\n",
			want: []string{`policy.toml:3:6: ip: expected array of strings, got string`},
		},
		{
			name: "zone written as a table instead of an array of tables",
			src:  "[zone]\nname = \"iot\"\n",
			want: []string{`policy.toml:1:1: zone: expected array of tables, got table`},
		},
		{
			name: "boolean of the wrong type",
			src:  "[[zone]]\nname = \"iot\"\nbridge_filter = \"yes\"\n",
			want: []string{`policy.toml:3:17: bridge_filter: expected boolean, got string`},
		},
		{
			name: "size of the wrong type",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\nmax_flow_bytes = 1.5\n"),
			want: []string{`policy.toml:17:18: max_flow_bytes: expected size (string or integer), got float`},
		},
		// The daemon table.
		{
			name: "daemon values out of their lists and ranges",
			src: `[daemon]
mode = "block"
timezone = "Mars/Olympus"
mark_mask = 0x3
on_daemon_down = "fail"
on_queue_full = "closed"
queues = 65
new_flow_rate = "fast"
flow_table_size = 100
socket = ""
`,
			want: []string{
				`policy.toml:2:8: mode must be "enforce" or "monitor", not "block"`,
				`policy.toml:3:12: bad timezone "Mars/Olympus": want an IANA name such as Europe/Brussels, UTC or Local`,
				`policy.toml:4:13: mark_mask 0x3 has 2 bits set; picoseg needs at least 3`,
				`policy.toml:5:18: on_daemon_down must be "open" or "closed", not "fail"`,
				`policy.toml:6:17: on_queue_full must be "open" or "drop", not "closed"`,
				`policy.toml:7:10: queues must be 1-64, not 65`,
				`policy.toml:8:17: malformed rate "fast": want COUNT/s, COUNT/m, COUNT/h or COUNT/DURATION, such as 10/s or 100/10s`,
				`policy.toml:9:19: flow_table_size must be 1024-4000000, not 100`,
				`policy.toml:10:10: socket must not be empty`,
			},
		},
		{
			name: "zero mark mask",
			src:  "[daemon]\nmark_mask = 0\n",
			want: []string{`policy.toml:2:13: mark_mask must be a non-zero 32-bit mask`},
		},
		{
			name: "queue numbers past 65535",
			src:  "[daemon]\nqueues = 4\nqueue_base = 65532\n",
			want: []string{`policy.toml:3:14: queue_base must be 0-65531 with 4 queues, not 65532`},
		},
		{
			name: "empty timezone",
			src:  "[daemon]\ntimezone = \"\"\n",
			want: []string{`policy.toml:2:12: bad timezone "": want an IANA name such as Europe/Brussels, UTC or Local`},
		},
		// Zones and segments.
		{
			name: "bad CIDR and interface name",
			src:  "[[zone]]\nname = \"iot\"\ninterfaces = [\"a-very-long-bridge-name\"]\nnetworks = [\"10.77.0.0/33\"]\n",
			want: []string{
				`policy.toml:3:15: bad interface name "a-very-long-bridge-name": want 1-15 bytes`,
				`policy.toml:4:13: bad CIDR "10.77.0.0/33": want an address and prefix length such as 10.77.0.0/24`,
			},
		},
		{
			name: "zone without a name",
			src:  "[[zone]]\ninterfaces = [\"eth0\"]\n",
			want: []string{`policy.toml:1:1: missing key "name" in [[zone]]`},
		},
		{
			name: "name that needs quoting",
			src:  "[[zone]]\nname = \"my zone\"\n",
			want: []string{`policy.toml:2:8: bad zone name "my zone": use letters, digits, '-', '_' and '.', starting with a letter or digit`},
		},
		{
			name: "unknown zone in a segment",
			src:  "[[zone]]\nname = \"iot\"\n\n[[segment]]\nfrom = \"iot\"\nto = \"lan\"\naction = \"micro\"\n",
			want: []string{`policy.toml:6:6: unknown zone "lan"`},
		},
		{
			name: "bad segment action and missing keys",
			src:  "[[segment]]\nfrom = \"*\"\naction = \"reject\"\n",
			want: []string{
				`policy.toml:1:1: missing key "to" in [[segment]]`,
				`policy.toml:3:10: action must be "allow", "deny" or "micro", not "reject"`,
			},
		},
		{
			name: "empty zone name in a segment",
			src:  "[[segment]]\nfrom = \"\"\nto = \"*\"\naction = \"deny\"\n",
			want: []string{`policy.toml:2:8: from must be a zone name or "*"`},
		},
		{
			name: "two segments for one pair of zones",
			src: `[[zone]]
name = "iot"

[[segment]]
from = "iot"
to = "*"
action = "deny"

[[segment]]
from = "iot"
to = "*"
action = "allow"
`,
			want: []string{`policy.toml:9:1: duplicate segment iot -> *, first defined at policy.toml:4:1`},
		},
		{
			name: "bad port routers",
			src:  "[[zone]]\nname = \"iot\"\nport_routers = [\"02:00:00:00:00\", \"01:00:5e:00:00:01\", \"02:00:00:00:00:99\", \"02:00:00:00:00:99\", 7]\n",
			want: []string{
				`policy.toml:3:17: port_routers: bad MAC address "02:00:00:00:00": want six hex bytes such as 02:00:00:00:00:11`,
				`policy.toml:3:35: port_routers: bad MAC address "01:00:5e:00:00:01": a multicast address cannot identify a device`,
				`policy.toml:3:77: port_routers lists 02:00:00:00:00:99 twice`,
				`policy.toml:3:98: port_routers[4]: expected string, got integer`,
			},
		},
		// Devices.
		{
			name: "unknown group, bad MAC and bad IP",
			src: `[[device]]
name = "cam"
mac = "02:00:00:00:00"
ip = ["10.77.0.300", "fe80::1%eth0"]
groups = ["camras"]
`,
			want: []string{
				`policy.toml:3:7: bad MAC address "02:00:00:00:00": want six hex bytes such as 02:00:00:00:00:11`,
				`policy.toml:4:7: bad IP address "10.77.0.300"`,
				`policy.toml:4:22: bad IP address "fe80::1%eth0"`,
				`policy.toml:5:11: unknown group "camras"`,
			},
		},
		{
			name: "multicast MAC",
			src:  "[[device]]\nname = \"cam\"\nmac = \"01:00:5e:00:00:01\"\n",
			want: []string{`policy.toml:3:7: bad MAC address "01:00:5e:00:00:01": a multicast address cannot identify a device`},
		},
		{
			name: "device with neither mac nor ip",
			src:  "[[device]]\nname = \"ghost\"\nip = []\n",
			want: []string{`policy.toml:1:1: device "ghost" needs a mac or an ip`},
		},
		{
			name: "one device listing an IP twice",
			src:  "[[device]]\nname = \"cam\"\nip = [\"10.0.0.1\", \"10.0.0.1\"]\n",
			want: []string{`policy.toml:3:19: device "cam" lists IP 10.0.0.1 twice`},
		},
		{
			name: "two devices with one MAC and one IP",
			src: `[[zone]]
name = "iot"
networks = ["10.0.0.0/8"]

[[device]]
name = "a"
mac = "02:00:00:00:00:11"
ip = ["10.0.0.1"]

[[device]]
name = "b"
mac = "02:00:00:00:00:11"
ip = ["10.0.0.2", "10.0.0.1"]
`,
			want: []string{
				`policy.toml:12:7: device "b" has MAC 02:00:00:00:00:11, already used by device "a" at policy.toml:7:7`,
				`policy.toml:13:19: device "b" has IP 10.0.0.1, already used by device "a" at policy.toml:8:7`,
			},
		},
		// Duplicate names.
		{
			name: "duplicate names of every kind",
			src: `[[zone]]
name = "iot"
[[zone]]
name = "iot"
[[group]]
name = "cams"
[[group]]
name = "cams"
[[device]]
name = "cam"
mac = "02:00:00:00:00:01"
[[device]]
name = "cam"
mac = "02:00:00:00:00:02"
[[allow]]
name = "r"
from = "any"
to = "any"
[[allow]]
name = "r"
from = "any"
to = "gateway"
`,
			want: []string{
				`policy.toml:4:8: duplicate zone "iot", first defined at policy.toml:2:8`,
				`policy.toml:8:8: duplicate group "cams", first defined at policy.toml:6:8`,
				`policy.toml:13:8: duplicate device "cam", first defined at policy.toml:10:8`,
				`policy.toml:20:8: duplicate allow rule "r", first defined at policy.toml:16:8`,
			},
		},
		// Allow rules.
		{
			name: "unknown names in endpoints",
			src:  allowPolicy("from = \"device:cam\"\nto = \"group:nvrs\"\n[[allow]]\nname = \"z\"\nfrom = \"zone:lan\"\nto = \"any\"\n"),
			want: []string{
				`policy.toml:15:8: unknown device "cam"`,
				`policy.toml:16:6: unknown group "nvrs"`,
				`policy.toml:19:8: unknown zone "lan"`,
			},
		},
		{
			name: "bad endpoint syntax",
			src:  allowPolicy("from = \"host:nvr\"\nto = \"device:\"\n[[allow]]\nname = \"n\"\nfrom = \"net:10.0.0.0/40\"\nto = \"gateway\"\n"),
			want: []string{
				`policy.toml:15:8: bad endpoint "host:nvr": want "any", "device:NAME", "group:NAME", "zone:NAME" or "net:CIDR"`,
				`policy.toml:16:6: bad endpoint "device:": missing name after "device:"`,
				`policy.toml:19:8: bad CIDR "10.0.0.0/40": want an address and prefix length such as 10.77.0.0/24`,
			},
		},
		{
			name: "gateway as a source",
			src:  allowPolicy("from = \"gateway\"\nto = \"any\"\n"),
			want: []string{`policy.toml:15:8: "gateway" cannot be a source; it is only valid in to`},
		},
		{
			name: "allow rule without name, from and to",
			src:  "[[allow]]\nservices = [\"tcp\"]\n",
			want: []string{
				`policy.toml:1:1: missing key "name" in [[allow]]`,
				`policy.toml:1:1: missing key "from" in [[allow]]`,
				`policy.toml:1:1: missing key "to" in [[allow]]`,
			},
		},
		{
			name: "bad services and port ranges",
			src: allowPolicy(`from = "any"
to = "any"
services = ["tcp/70000", "udp/10-5", "icmp/8", "http", "proto/0", "tcp/ssh", "any/1"]
`),
			want: []string{
				`policy.toml:17:13: bad port range in service "tcp/70000": port 70000 is above 65535`,
				`policy.toml:17:26: bad port range in service "udp/10-5": 10-5 starts above its end`,
				`policy.toml:17:38: bad service "icmp/8": icmp has no ports`,
				`policy.toml:17:48: bad service "http": want "any", "tcp", "udp", "icmp", "icmpv6", "tcp/PORT", "udp/LO-HI" or "proto/N"`,
				`policy.toml:17:56: bad service "proto/0": protocol number must be 1-255`,
				`policy.toml:17:67: bad port range in service "tcp/ssh": "ssh" is not a port number`,
				`policy.toml:17:78: bad service "any/1": want "any", "tcp", "udp", "icmp", "icmpv6", "tcp/PORT", "udp/LO-HI" or "proto/N"`,
			},
		},
		{
			name: "empty lists",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\nservices = []\nhours = []\ndays = []\n"),
			want: []string{
				`policy.toml:17:12: services is empty; leave it out for no constraint`,
				`policy.toml:18:9: hours is empty; leave it out for no constraint`,
				`policy.toml:19:8: days is empty; leave it out for no constraint`,
			},
		},
		{
			name: "impossible and malformed time windows",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\nhours = [\"08:00-08:00\", \"8:00-17:00\", \"24:00-06:00\", \"10:60-11:00\", \"09:00\"]\n"),
			want: []string{
				`policy.toml:17:10: impossible time window "08:00-08:00": it starts where it ends`,
				`policy.toml:17:25: malformed time window "8:00-17:00": want HH:MM-HH:MM`,
				`policy.toml:17:39: malformed time window "24:00-06:00": 24:00 can only end a window`,
				`policy.toml:17:54: malformed time window "10:60-11:00": want HH:MM-HH:MM`,
				`policy.toml:17:69: malformed time window "09:00": want HH:MM-HH:MM`,
			},
		},
		{
			name: "bad days",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\ndays = [\"monday\", \"mon-frii\", \"Sun\"]\n"),
			want: []string{
				`policy.toml:17:9: bad day "monday": want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri`,
				`policy.toml:17:19: bad day "mon-frii": want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri`,
				`policy.toml:17:31: bad day "Sun": want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri`,
			},
		},
		{
			name: "packet sizes out of bounds",
			src: allowPolicy(`from = "any"
to = "any"
packet_size = "10-1500"
[[allow]]
name = "b"
from = "any"
to = "gateway"
packet_size = "1500"
`),
			want: []string{
				`policy.toml:17:15: bad packet size "10-1500": need 20 <= MIN <= MAX <= 65535`,
				`policy.toml:22:15: malformed packet size "1500": want MIN-MAX in bytes, such as 60-1500`,
			},
		},
		{
			name: "malformed sizes",
			src: allowPolicy(`from = "any"
to = "any"
max_flow_bytes = "5 MB"
max_device_bytes = { amount = "0.5B", per = "1h" }
min_device_bytes = { amount = 0, per = "1h" }
[[allow]]
name = "b"
from = "any"
to = "gateway"
max_flow_bytes = "99999999TB"
`),
			want: []string{
				`policy.toml:17:18: malformed size "5 MB": want bytes as an integer, or a number with unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, such as 500MB`,
				`policy.toml:18:31: malformed size "0.5B": not a whole number of bytes`,
				`policy.toml:19:31: malformed size 0: must be more than 0 bytes`,
				`policy.toml:24:18: malformed size "99999999TB": too large`,
			},
		},
		{
			name: "malformed durations and rates",
			src: allowPolicy(`from = "any"
to = "any"
max_device_bytes = { amount = "1GB", per = "1d" }
min_device_bytes = { amount = "1KB", per = "-1h" }
max_new_flows = "0/s"
[[allow]]
name = "b"
from = "any"
to = "gateway"
max_new_flows = "10/fortnight"
`),
			want: []string{
				`policy.toml:17:44: malformed duration "1d": want a Go duration such as 90s, 1h or 24h`,
				`policy.toml:18:44: malformed duration "-1h": must be more than zero`,
				`policy.toml:19:17: malformed rate "0/s": count must be 1-2147483647`,
				`policy.toml:24:17: malformed rate "10/fortnight": want COUNT/s, COUNT/m, COUNT/h or COUNT/DURATION, such as 10/s or 100/10s`,
			},
		},
		{
			name: "minimum budget above the maximum",
			src:  allowPolicy("from = \"any\"\nto = \"any\"\nmax_device_bytes = { amount = \"1MB\", per = \"1h\" }\nmin_device_bytes = { amount = \"2MB\", per = \"1h\" }\n"),
			want: []string{`policy.toml:18:20: min_device_bytes 2000000 per 1h0m0s is more than max_device_bytes 1000000 per 1h0m0s: no device can satisfy both`},
		},
		{
			name: "errors are sorted by line and column, not by kind",
			src: `[[device]]
name = "b"
groups = ["nope"]
mac = "zz"
[[zone]]
nmae = "x"
`,
			want: []string{
				`policy.toml:3:11: unknown group "nope"`,
				`policy.toml:4:7: bad MAC address "zz": want six hex bytes such as 02:00:00:00:00:11`,
				`policy.toml:5:1: missing key "name" in [[zone]]`,
				`policy.toml:6:1: unknown key "nmae" in [[zone]]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errorLines(t, tt.src)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorListUnwrapsToEachError(t *testing.T) {
	_, _, err := Parse("p.toml", []byte("[daemon]\nqueues = 0\nmode = \"x\"\n"))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("got %v, want an ErrorList of 2", err)
	}
	var first *Error
	if !errors.As(err, &first) {
		t.Fatalf("errors.As(*Error) failed on %v", err)
	}
	want := &Error{Pos: Pos{File: "p.toml", Line: 2, Col: 10}, Msg: "queues must be 1-64, not 0"}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first error (-want +got):\n%s", diff)
	}
	if got, want := first.Error(), "p.toml:2:10: queues must be 1-64, not 0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := Load("testdata/no-such-policy.toml")
	if err == nil || !strings.Contains(err.Error(), "no-such-policy.toml") {
		t.Errorf("Load of a missing file: got %v, want an error naming the file", err)
	}
}
