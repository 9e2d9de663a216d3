package replay

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// In rules/demo.toml the admin may reach the hub on tcp/80 and ping it, and
// the IoT zone may open nothing towards the LAN. The hub's lone ACK and RST
// from port 80 pass as replies of the admin's connection; its SYN on the
// same ports is its own connection, denied. Its pings to the admin, while
// the admin pings it, are its own too.
func TestReplayCreditsFlowsToTheirOpener(t *testing.T) {
	const hub, admin, hubMAC, adminMAC = "10.77.0.30", "10.88.0.10", "02:00:00:00:00:30", "02:00:00:00:01:10"
	frames := []frame{
		{hubMAC, hub, admin, "tcp", 80, 40000, "A", 0, 0},
		{hubMAC, hub, admin, "tcp", 80, 40000, "R", 0, 0},
		{hubMAC, hub, admin, "tcp", 80, 40000, "S", 0, 0},
		{adminMAC, admin, hub, "icmp", 7, 0, "", 0, 8}, // the admin pings the hub
		{hubMAC, hub, admin, "icmp", 7, 0, "", 0, 0},   // its answer
		{hubMAC, hub, admin, "icmp", 7, 0, "", 0, 8},   // the hub pings back, same identifier
		{hubMAC, hub, admin, "icmp", 9, 0, "", 0, 8},   // and with its own
	}
	r := New(loadPolicy(t, "../../rules/demo.toml"))
	if err := r.Reader("attack.pcap", bytes.NewReader(scenarioCapture(t, frames, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)))); err != nil {
		t.Fatal(err)
	}
	rep := r.Report()
	var events []string
	for _, e := range rep.Events {
		events = append(events, strings.Join([]string{e.Type, e.Device, e.Layer, e.Rule, e.Proto, e.Src, e.Dst}, " "))
	}
	want := []string{
		"flow_denied hub segment iot->lan tcp 10.77.0.30 10.88.0.10",
		"flow_denied hub segment iot->lan icmp 10.77.0.30 10.88.0.10",
		"flow_denied hub segment iot->lan icmp 10.77.0.30 10.88.0.10",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events (-want +got):\n-%s\n+%s", strings.Join(want, "\n-"), strings.Join(events, "\n+"))
	}
	if rep.Packets != 7 || rep.Flows != 5 || rep.AcceptedFlows != 2 || rep.DroppedFlows != 3 {
		t.Errorf("packets %d flows %d accepted %d dropped %d; want 7 5 2 3", rep.Packets, rep.Flows, rep.AcceptedFlows, rep.DroppedFlows)
	}
	// The accepted flows are the admin's; the hub opened only the denied
	// ones.
	byName := map[string]*DeviceSummary{}
	for _, d := range rep.Devices {
		byName[d.Device] = d
	}
	if a, h := byName["admin"], byName["hub"]; a == nil || h == nil || a.Flows != 2 || a.DroppedFlows != 0 || a.Packets != 4 || h.Flows != 3 || h.DroppedFlows != 3 || h.Packets != 3 {
		t.Errorf("devices: admin %+v, hub %+v; want admin 2 flows 4 packets, hub 3 denied flows 3 packets", a, h)
	}
}
