package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// runMainEnv makes the test binary act as picoseg itself, so that the
// integration tests run the real command in the lab's gateway without a
// separate build step.
const runMainEnv = "PICOSEG_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckExamples(t *testing.T) {
	for _, f := range []string{"../../rules/home.toml", "../../rules/office-bacnet.toml", "../../rules/demo.toml"} {
		code, out, errs := runCmd(t, "check", "-c", f)
		if code != 0 || !strings.Contains(out, ": ok: ") {
			t.Errorf("check %s: exit %d\n%s%s", f, code, out, errs)
		}
	}
}

func TestCheckPointsAtTheMistake(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.toml"
	os.WriteFile(bad, []byte(`[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[device]]
name = "cam"
ip = ["10.77.0.11"]
groups = ["camras"]
`), 0o644)
	code, out, errs := runCmd(t, "check", "-c", bad)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errs, bad+":8:") || !strings.Contains(errs, "camras") {
		t.Fatalf("error should point at line 8 and name the group:\n%s", errs)
	}
}

func TestExplain(t *testing.T) {
	code, out, errs := runCmd(t, "explain", "-c", "../../rules/home.toml", "--from", "10.77.0.11", "--to", "192.168.1.20", "--proto", "tcp", "--dport", "22")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"drop", "front-cam", "micro", "no allow rule"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd(t, "explain", "-c", "../../rules/home.toml", "--from", "10.77.0.21", "--to", "203.0.113.5", "--proto", "tcp", "--dport", "8883", "--at", "mon 03:00", "--json")
	if code != 0 || !strings.Contains(out, `"verdict": "drop"`) || !strings.Contains(out, `"rule": "plugs-to-cloud"`) || !strings.Contains(out, "time window") {
		t.Fatalf("explain at night, exit %d:\n%s", code, out)
	}
	code, out, _ = runCmd(t, "explain", "-c", "../../rules/home.toml", "--from", "10.77.0.21", "--to", "203.0.113.5", "--proto", "tcp", "--dport", "8883", "--at", "mon 12:00", "--json")
	if code != 0 || !strings.Contains(out, `"verdict": "accept"`) || !strings.Contains(out, "within its constraints") {
		t.Fatalf("explain at noon, exit %d:\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, _ := runCmd(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "explain", "-c", "../../rules/home.toml", "--from", "nonsense", "--to", "10.0.0.1"); code != 2 {
		t.Errorf("bad address: exit %d, want 2", code)
	}
	if code, out, _ := runCmd(t, "version"); code != 0 || !strings.HasPrefix(out, "picoseg ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestCheckRefusesABadAlertSink(t *testing.T) {
	bad := t.TempDir() + "/bad.toml"
	os.WriteFile(bad, []byte("[[alert.sink]]\ntype = \"syslog\"\naddress = \"smtp://mail:25\"\n"), 0o644)
	code, _, errs := runCmd(t, "check", "-c", bad)
	if code != 1 || !strings.Contains(errs, bad+":3:11: [[alert.sink]]: address") {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
}

// explain reads protocols and days as the policy writes them, so a word
// the policy would refuse is refused here too.
func TestExplainSpeaksThePolicyLanguage(t *testing.T) {
	args := []string{"explain", "-c", "../../rules/home.toml", "--from", "10.77.0.21", "--to", "203.0.113.5", "--dport", "8883"}
	if code, out, errs := runCmd(t, append(args, "--proto", "proto/6", "--at", "mon 03:00")...); code != 0 || !strings.Contains(out, "plugs-to-cloud") {
		t.Errorf("proto/6: exit %d\n%s%s", code, out, errs)
	}
	for _, bad := range [][]string{{"--proto", "0"}, {"--at", "monday 03:00"}, {"--at", "mon 3:00"}} {
		if code, _, _ := runCmd(t, append(args, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// check says who may act as router and DHCP server on each local zone's
// bridge ports.
func TestCheckNamesPortRouters(t *testing.T) {
	f := t.TempDir() + "/p.toml"
	os.WriteFile(f, []byte(`[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]
port_routers = ["02:00:00:00:00:99"]

[[zone]]
name = "lan"
interfaces = ["lan0"]
networks = ["10.88.0.0/24"]
`), 0o644)
	code, out, errs := runCmd(t, "check", "-c", f)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"zone iot         02:00:00:00:00:99\n", "zone lan         none: only the gateway\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
