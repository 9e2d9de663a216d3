package alert

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

func sampleAlert() Alert {
	return Alert{
		Type: TypeFlowDenied, Severity: SeverityWarning,
		Time:   time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC),
		Device: "camera-1", Src: addr("10.0.0.5"), Dst: addr("10.0.1.1"), Proto: "tcp", DPort: 22,
		Layer: engine.LayerMicro, Rule: "cams", Count: 1,
		Message: "camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied",
	}
}

func TestRFC5424(t *testing.T) {
	h := header{facility: FacilityDaemon, hostname: "gw", pid: 812}
	a := sampleAlert()
	got := string(appendRFC5424(nil, &h, &a))
	want := `<28>1 2025-01-02T03:04:05.678901Z gw picoseg 812 flow_denied ` +
		`[picoseg@32473 type="flow_denied" device="camera-1" src="10.0.0.5" dst="10.0.1.1" proto="tcp" port="22" layer="micro" rule="cams" count="1"] ` +
		`camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied`
	if got != want {
		t.Errorf("RFC 5424:\n got %s\nwant %s", got, want)
	}

	// A daemon alert: no flow fields, no hostname, local6.
	h = header{facility: 22, hostname: "", pid: 1}
	a = Alert{Type: TypePolicyReloadFailed, Severity: SeverityError, Time: a.Time, Count: 1}
	got = string(appendRFC5424(nil, &h, &a))
	want = `<179>1 2025-01-02T03:04:05.678901Z - picoseg 1 policy_reload_failed [picoseg@32473 type="policy_reload_failed" count="1"]`
	if got != want {
		t.Errorf("RFC 5424 daemon alert:\n got %s\nwant %s", got, want)
	}
}

func TestSDEscaping(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`plain`, `plain`},
		{`say "hi"`, `say \"hi\"`},
		{`back\slash`, `back\\slash`},
		{`close]bracket`, `close\]bracket`},
		{`all "\]`, `all \"\\\]`},
		// A newline would end the line on a newline-framed relay: a
		// forged second message.
		{"evil\n<13>1 forged", "evil <13>1 forged"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	} {
		if got := string(appendText(nil, tc.in, true)); got != tc.want {
			t.Errorf("SD value %q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	// Outside SD, only control characters and bad UTF-8 change.
	if got := string(appendText(nil, "a \"b\" ]\tc", false)); got != `a "b" ] c` {
		t.Errorf("MSG text: got %q", got)
	}
	a := sampleAlert()
	a.Rule = `r"]`
	h := header{hostname: "gw host\n", pid: 1}
	got := string(appendRFC5424(nil, &h, &a))
	if !strings.Contains(got, ` rule="r\"\]" `) || !strings.Contains(got, " gwhost picoseg ") {
		t.Errorf("escaping in a whole message: %s", got)
	}
}

func TestOctetCounting(t *testing.T) {
	for _, msg := range []string{"", "x", "<13>1 - - - - - - héllo", strings.Repeat("a", 12345)} {
		got := string(appendOctetCounted([]byte("prev|"), []byte(msg)))
		// LEN counts octets, not characters.
		want := "prev|" + strconv.Itoa(len(msg)) + " " + msg
		if got != want {
			t.Errorf("framing %d bytes: got %.40q, want %.40q", len(msg), got, want)
		}
	}
}

func TestRFC3164(t *testing.T) {
	h := header{facility: FacilityDaemon, pid: 812}
	a := sampleAlert()
	a.Time = time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local)
	got := string(appendRFC3164(nil, &h, &a))
	want := "<28>Jan  2 03:04:05 picoseg[812]: flow_denied: camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied"
	if got != want {
		t.Errorf("RFC 3164:\n got %q\nwant %q", got, want)
	}
}

func TestTruncateUTF8(t *testing.T) {
	b := []byte("aé") // 'é' is 2 bytes
	if got := string(truncateUTF8(b, 2)); got != "a" {
		t.Errorf("got %q, want %q", got, "a")
	}
	if got := string(truncateUTF8(b, 3)); got != "aé" {
		t.Errorf("got %q", got)
	}
}

func TestFormatMessage(t *testing.T) {
	a := sampleAlert()
	a.Reason = engine.ReasonNoAllowRule.String()
	got := formatMessage(&a, 20, 10*time.Second)
	want := `camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied at the micro layer by rule "cams": no allow rule permits this device, peer and service`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	a = Alert{Type: TypePossibleScan, Device: "cam", Count: 41, Summary: true}
	if got := formatMessage(&a, 20, 10*time.Second); got != "cam: possible scan: more than 20 distinct destinations or ports within 10s [41 more events]" {
		t.Errorf("scan summary: %s", got)
	}
	a = Alert{Type: TypeDaemonStarted}
	if got := formatMessage(&a, 20, time.Second); got != "picoseg started" {
		t.Errorf("daemon_started: %s", got)
	}
}
