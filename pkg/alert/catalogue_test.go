package alert

import (
	"os"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/engine"
)

func TestEveryEngineEventHasAnAlertType(t *testing.T) {
	for et := engine.EventType(1); et.String() != "unknown"; et++ {
		at, ok := FromEvent(et)
		if !ok {
			t.Errorf("engine event %q has no alert type", et)
			continue
		}
		if !at.Valid() || at.Severity() > SeverityDebug {
			t.Errorf("engine event %q maps to %v with severity %v", et, at, at.Severity())
		}
		// An engine event and the alert it raises are one thing with
		// one name (replay reports carry the engine's).
		if at.String() != et.String() {
			t.Errorf("engine event %q maps to alert type %q", et, at)
		}
	}
	if _, ok := FromEvent(0); ok {
		t.Error("the zero engine event maps to an alert type")
	}
}

func TestCatalogue(t *testing.T) {
	want := map[string]Severity{
		"flow_denied": SeverityWarning, "spoofed_address": SeverityCritical, "new_device": SeverityNotice,
		"device_silent": SeverityWarning, "volume_exceeded": SeverityWarning, "outside_time_window": SeverityNotice,
		"new_flow_rate_exceeded": SeverityWarning, "possible_scan": SeverityWarning, "queue_overflow": SeverityError,
		"internal_error":       SeverityError,
		"policy_reload_failed": SeverityError, "daemon_started": SeverityInfo, "daemon_stopped": SeverityNotice,
		"undecodable_packet": SeverityNotice, "alerts_suppressed": SeverityError, "alerts_resumed": SeverityNotice,
		"arp_spoof": SeverityCritical, "arp_flood": SeverityWarning, "ruleset_restored": SeverityError,
		"rogue_router": SeverityCritical,
		"app_mismatch": SeverityWarning, "app_denied": SeverityWarning, "app_unidentified": SeverityNotice,
	}
	types := Types()
	if len(types) != len(want) {
		t.Errorf("catalogue has %d types, want %d", len(types), len(want))
	}
	for _, ty := range types {
		sev, ok := want[ty.String()]
		if !ok {
			t.Errorf("unexpected type %q", ty)
			continue
		}
		if ty.Severity() != sev {
			t.Errorf("%s: severity %v, want %v", ty, ty.Severity(), sev)
		}
		back, err := ParseType(ty.String())
		if err != nil || back != ty {
			t.Errorf("ParseType(%q) = %v, %v", ty, back, err)
		}
		if catalogue[ty].title == "" {
			t.Errorf("%s has no title", ty)
		}
	}
	if _, err := ParseType("flow_dneied"); err == nil {
		t.Error("ParseType accepted a misspelt name")
	}
}

// The README copies doc.go's table; it must list every type with its
// severity.
func TestDocTableMatchesCatalogue(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		if name := strings.TrimSpace(cells[1]); name != "" {
			rows[name] = strings.TrimSpace(cells[2])
		}
	}
	for _, ty := range Types() {
		if got, ok := rows[ty.String()]; !ok || got != ty.Severity().String() {
			t.Errorf("doc.go table: %s has severity %q, want %q", ty, got, ty.Severity())
		}
	}
}

func TestParseFacility(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Facility
		ok   bool
	}{
		{"", FacilityDaemon, true},
		{"daemon", 3, true},
		{"LOCAL7", 23, true},
		{"authpriv", 10, true},
		{"demon", 0, false},
	} {
		got, err := ParseFacility(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseFacility(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if p := priority(FacilityDaemon, SeverityWarning); p != 28 {
		t.Errorf("priority(daemon, warning) = %d, want 28", p)
	}
}
