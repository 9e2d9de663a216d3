// Package policygen writes the policies the benchmark runs with, as TOML
// text: the lab's devices with the services the benchmark traffic uses, among
// a crowd of generated devices, groups and allow rules of every selector
// kind, so that the engine judges against a policy of realistic size rather
// than a toy one.
//
// The policy sizes are parameters; nothing is hand-written per run.
package policygen

import (
	"fmt"
	"strings"
)

// LabDevice is one device of the namespace lab that sends benchmark traffic.
type LabDevice struct {
	Name string
	MAC  string // "02:00:00:00:00:11"
	IP   string // "10.77.0.11"
}

// Spec says what policy to generate.
type Spec struct {
	// Devices and Rules are how many generated devices and allow rules
	// surround the lab's devices and the benchmark's own rules.
	Devices, Rules int
	// Lab are the devices that send benchmark traffic; they form the group
	// "bench" which the benchmark rules allow to the wan.
	Lab []LabDevice
	// TCPPorts and UDPPorts are the wan services the benchmark uses, as
	// "lo-hi" or "n".
	TCPPorts, UDPPorts []string
	// Queues is the daemon's queue count; QueueBase its first queue.
	Queues, QueueBase int
	// NewFlowRate is the per-source new-flow guard, e.g. "1000000/s". The
	// benchmark raises it far above the default 200/s: otherwise the guard,
	// not the queue consumer, is what a new-flow benchmark measures.
	NewFlowRate string
	// FlowTableSize is the daemon's flow table capacity (0: default).
	FlowTableSize int
	// Socket is the daemon's status socket.
	Socket string
	// Lock is the daemon's lock file ("": the default). The lock is one
	// per machine, not per namespace: a benchmark daemon takes its own, or
	// any other picoseg running on the machine (a test's) stops it.
	Lock string
	// Comment is written at the top of the file.
	Comment string
}

// GroupCount is how many groups the generated devices are spread over.
const GroupCount = 100

// DeviceAddr returns the address of generated device i: inside the iot
// zone's 10.77.0.0/16 but outside the lab's bridge subnet 10.77.0.0/24.
func DeviceAddr(i int) string {
	return fmt.Sprintf("10.77.%d.%d", 1+i/250, 1+i%250)
}

// Generate returns the policy s describes.
func Generate(s Spec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	writeDaemon(w, s)
	w("%s", zonesAndSegments)
	writeDevices(w, s)
	writeRules(w, s)
	writeBenchRule(w, s)
	return b.String()
}

// writer appends formatted text to the policy being generated.
type writer func(format string, args ...any)

// writeDaemon writes the comment and the [daemon] table.
func writeDaemon(w writer, s Spec) {
	if s.Comment != "" {
		for _, line := range strings.Split(s.Comment, "\n") {
			w("# %s\n", line)
		}
		w("\n")
	}
	w("[daemon]\nmode = \"enforce\"\ntimezone = \"UTC\"\non_daemon_down = \"open\"\non_queue_full = \"open\"\n")
	if s.Queues > 0 {
		w("queues = %d\n", s.Queues)
	}
	if s.QueueBase > 0 {
		w("queue_base = %d\n", s.QueueBase)
	}
	if s.NewFlowRate != "" {
		w("new_flow_rate = %q\n", s.NewFlowRate)
	}
	if s.FlowTableSize > 0 {
		w("flow_table_size = %d\n", s.FlowTableSize)
	}
	if s.Socket != "" {
		w("socket = %q\n", s.Socket)
	}
	if s.Lock != "" {
		w("lock = %q\n", s.Lock)
	}
}

// zonesAndSegments are the lab's zones and segments, with the benchmark's
// own group.
const zonesAndSegments = `
[[zone]]
name = "wan"
interfaces = ["wan0"]
networks = ["0.0.0.0/0"]

[[zone]]
name = "lan"
interfaces = ["lan0"]
networks = ["10.88.0.0/24"]

[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/16"]

[[segment]]
from = "lan"
to = "*"
action = "allow"

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[segment]]
from = "iot"
to = "iot"
action = "micro"

[[segment]]
from = "iot"
to = "lan"
action = "deny"

[[segment]]
from = "wan"
to = "*"
action = "deny"

[[group]]
name = "bench"
`

// writeDevices writes the groups, the lab's own devices and the generated
// ones.
func writeDevices(w writer, s Spec) {
	for g := 0; g < GroupCount; g++ {
		w("\n[[group]]\nname = \"g%d\"\n", g)
	}
	for _, d := range s.Lab {
		w("\n[[device]]\nname = %q\nmac = %q\nip = [%q]\ngroups = [\"bench\"]\n", d.Name, d.MAC, d.IP)
	}
	for i := 0; i < s.Devices; i++ {
		w("\n[[device]]\nname = \"d%d\"\nmac = \"02:10:%02x:%02x:%02x:%02x\"\nip = [%q]\ngroups = [\"g%d\", \"g%d\"]\n",
			i, byte(i>>24), byte(i>>16), byte(i>>8), byte(i), DeviceAddr(i), i%GroupCount, (i/GroupCount)%GroupCount)
	}
}

// writeRules writes the generated allow rules.
func writeRules(w writer, s Spec) {
	// The generated rules use the selector kinds in equal shares. Their
	// ports (10000 and up) stay clear of the benchmark's own, and differ
	// from rule to rule, so that no rule shadows another: a shadowed rule
	// is a policy warning, and a realistic policy has few.
	for i := 0; i < s.Rules; i++ {
		w("\n[[allow]]\nname = \"r%d\"\n", i)
		port := 10000 + i%50000
		switch {
		case i%4 == 0 && s.Devices > 0:
			w("from = \"device:d%d\"\nto = \"device:d%d\"\n", i%s.Devices, (i*7)%s.Devices)
		case i%4 == 2 && s.Devices > 0:
			w("from = \"device:d%d\"\nto = \"net:198.51.%d.0/24\"\n", i%s.Devices, 101+(i>>8)%150)
		case i%4 == 3:
			w("from = \"group:g%d\"\nto = \"group:g%d\"\n", i%GroupCount, (i/GroupCount)%GroupCount)
		default:
			w("from = \"group:g%d\"\nto = \"zone:wan\"\n", i%GroupCount)
		}
		w("services = [\"tcp/%d-%d\", \"udp/%d\"]\n", port, port+i%3, port)
	}
}

// writeBenchRule writes the rule that lets the benchmark's own traffic out.
func writeBenchRule(w writer, s Spec) {
	var svc []string
	for _, p := range s.TCPPorts {
		svc = append(svc, fmt.Sprintf("%q", "tcp/"+p))
	}
	for _, p := range s.UDPPorts {
		svc = append(svc, fmt.Sprintf("%q", "udp/"+p))
	}
	if len(svc) > 0 {
		w("\n# The benchmark's own traffic: no new-flow limit on purpose.\n[[allow]]\nname = \"bench-to-wan\"\nfrom = \"group:bench\"\nto = \"zone:wan\"\nservices = [%s]\n", strings.Join(svc, ", "))
	}
}
