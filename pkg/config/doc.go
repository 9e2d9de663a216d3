// Package config reads a picoseg policy from TOML into plain structs.
//
// It is the first step of parse → validate → compile → swap: [Load] reads
// the main policy file and the files it includes, decodes them strictly and
// validates the whole, so that package policy only ever compiles a policy
// in which every name resolves. A policy with any error is refused whole:
// Load returns a nil [Config] and an [ErrorList] with every problem found,
// each written FILE:LINE:COL: message and pointing at the offending key or
// value, sorted by file, line and column. Things that load but are probably
// not what the author meant come back as [Warning] values.
//
// # The policy language
//
// The main file:
//
//	include = ["rules.d/*.toml"]  # optional
//
//	[daemon]                      # optional, main file only
//	mode = "enforce"              # "enforce" (default) or "monitor"
//	timezone = "Europe/Brussels"  # for hours and days; default Local
//	mark_mask = 0x000000f8        # mark bits picoseg owns; contiguous, >= 3 bits
//	on_daemon_down = "open"       # "open" (default) or "closed"
//	on_queue_full = "open"        # "open" (default) or "drop"
//	queues = 2                    # 1..64, default 2
//	queue_max_len = 4096          # packets each kernel queue holds; 64..1048576
//	queue_base = 4200             # 0..65535-queues, default 4200
//	new_flow_rate = "200/s"       # per-device new-flow guard, default 200/s
//	flow_table_size = 65536       # 1024..4000000, default 65536
//	socket = "/run/picoseg/picoseg.sock"
//
//	[alert]                       # optional, main file only
//	window = "60s"                # repeats per (type, device) folded into one summary
//	scan_window = "10s"           # possible_scan: this many distinct
//	scan_threshold = 20           # destinations or ports within the window
//
//	[[alert.sink]]                # any number; none means local syslog
//	type = "syslog"               # or "jsonl"
//	address = "tls://siem.example.net:6514"  # "" = /dev/log; udp://, tcp://, tls://, unix://
//	ca = "/etc/picoseg/siem-ca.pem"          # tls:// only; also cert, key
//	facility = "daemon"
//	# jsonl: path = "/var/log/picoseg/alerts.jsonl", max_size = "10MB", keep = 5
//
//	[inventory]                   # optional, main file only
//	leases = "/tmp/dhcp.leases"   # dnsmasq leases, for hostnames
//	unknown_group = "quarantine"  # devices not in the policy are in this group
//	state = "/var/lib/picoseg/devices.json"
//
//	[metrics]                     # optional, main file only
//	listen = "127.0.0.1:9107"     # Prometheus endpoint; off when absent
//
//	[gateway]                     # optional, main file only
//	addresses = ["10.77.0.1"]     # the gateway's own; the daemon adds its interfaces'
//	dhcp = true                   # the default services to the gateway: true (default),
//	dns = ["zone:lan"]            # false (off), or the sources allowed (as in from)
//	ping = true
//	ipv6_nd = true                # neighbour discovery, router solicitation, MLD
//	dhcpv6 = true
//
//	[[zone]]
//	name = "iot"
//	interfaces = ["br-iot"]       # Linux names, at most 15 bytes
//	networks = ["10.77.0.0/24", "fd00:77::/64"]
//	bridge_filter = true          # let same-bridge traffic reach picoseg
//	port_routers = []             # MACs on its ports allowed to act as router or DHCP server
//
//	[[segment]]
//	from = "iot"                  # a zone name or "*"
//	to = "wan"                    # the same, or "gateway" ("*" never includes it)
//	action = "micro"              # "allow", "deny" or "micro"
//
//	[[group]]
//	name = "cameras"
//
//	[[device]]
//	name = "front-cam"
//	mac = "02:00:00:00:00:11"     # a mac, an ip, or both
//	ip = ["10.77.0.11"]
//	groups = ["cameras"]
//
//	[[allow]]
//	name = "cams-to-nvr"
//	from = "group:cameras"        # "any", "device:N", "group:N", "zone:N", "net:CIDR"
//	to = "device:nvr"             # the same, or "gateway"
//	services = ["tcp/554", "udp/5000-5010"]  # default: any
//	hours = ["06:00-23:00"]       # HH:MM-HH:MM; may wrap midnight; 24:00 may end one
//	days = ["mon-fri", "sun"]     # mon..sun; ranges may wrap ("fri-mon")
//	packet_size = "60-1500"       # bytes, 20 <= min <= max <= 65535
//	max_flow_bytes = "500MB"      # a size
//	max_device_bytes = { amount = "2GB", per = "24h" }
//	min_device_bytes = { amount = "1KB", per = "1h" }
//	max_new_flows = "10/s"        # a rate
//	max_peers = 20                # distinct peers per device per window
//	max_ports = 5                 # distinct ports on one peer per window
//	fanout_window = "1m"          # default 1m
//	app = "tls"                   # the protocol the flows must speak (app.go)
//	unidentified = "deny"         # or "allow": not identified within the budget
//	[allow.tls]                   # or [allow.http], [allow.modbus]: the protocol's constraint
//	server_names = ["*.example.com"]
//
// Services are "any", "tcp", "udp" (any port), "tcp/PORT", "tcp/LO-HI",
// "udp/..." likewise, "icmp", "icmpv6" and "proto/N" for any other IP
// protocol. A size is a TOML integer of bytes, or a string: an integer or
// decimal number with unit B, KB, MB, GB, TB (powers of 1000) or KiB, MiB,
// GiB, TiB (powers of 1024) that comes to a whole number of bytes. A rate
// is COUNT/s, COUNT/m, COUNT/h or COUNT/DURATION ("100/10s"). Durations
// are Go durations ("90s", "24h"). Names of zones, groups, devices and
// rules use letters, digits, '-', '_' and '.', and are unique per kind.
//
// Include patterns are globs relative to the main file's directory; each
// pattern's matches are loaded in sorted order, a file matched twice is
// loaded once and the main file never includes itself. A pattern without
// wildcards must match a file. Included files hold zone, segment, group,
// device and allow tables only; names are shared across all files.
//
// # Strictness
//
// Unknown keys, values of the wrong type, malformed values, references to
// undefined names, duplicate names, a MAC or IP claimed by two devices,
// "gateway" as a source (of a rule or a segment) and a zone named
// "gateway" are errors. Warnings cover a network written with host bits
// set (it is masked), a device IP in no zone, a device without a MAC (it
// can only be identified by its address), duplicate or shadowed allow
// rules, and micro segments inside a bridge whose traffic picoseg cannot
// see without bridge_filter.
//
// # The gateway
//
// Traffic to the gateway itself is judged like any other: a segment to
// "gateway" and allow rules to "gateway" open its services, and nothing
// else does. Only the services in [gateway] pass without them, from every
// local zone (a zone without a default route), neighbour discovery from
// every zone: DHCP, DNS, ICMP echo, IPv6 neighbour discovery and DHCPv6.
//
// # Positions
//
// Every error and warning names FILE:LINE:COL with a 1-based line and a
// 1-based column counted in bytes. An unknown key points at the key; a bad
// value at the value (for strings, the opening quote; for an array element,
// the element). The Pos of Daemon, Zone, Segment, Group, Device and Allow
// is the opening bracket of the table's header ("[[allow]]"), or the brace
// of an inline table; Daemon.Pos has line 0 when there is no [daemon]
// table. Endpoint.Pos is the position of the endpoint's string value.
//
// The TOML library reports positions of syntax errors, but keeps key
// positions private and indexed by dotted name, which cannot tell one
// [[allow]] table from another. So the loader reads TOML itself, in one
// pass that builds the library's tree and records where every key and
// value of every table and array element is written (toml.go). The
// library is asked only to word a syntax error, in the terms users know.
// The reader is strict where the library is lenient: a key written twice,
// or a table added to once closed, is an error rather than a silent
// replacement.
package config
