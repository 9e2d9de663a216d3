package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

// rsyslogFields is what the test template prints, in order; msg last,
// since it may hold the separator.
var rsyslogFields = []string{
	"msgid", "app-name", "procid", "hostname", "syslogfacility-text", "syslogseverity-text",
	"$!rfc5424-sd!picoseg@32473!type", "$!rfc5424-sd!picoseg@32473!device",
	"$!rfc5424-sd!picoseg@32473!src", "$!rfc5424-sd!picoseg@32473!dst",
	"$!rfc5424-sd!picoseg@32473!proto", "$!rfc5424-sd!picoseg@32473!port",
	"$!rfc5424-sd!picoseg@32473!layer", "$!rfc5424-sd!picoseg@32473!rule",
	"$!rfc5424-sd!picoseg@32473!count", "msg",
}

// rsyslogConf listens with imtcp on 127.0.0.1, plain and (if withTLS)
// TLS through the gtls driver, each on a port the kernel picks, and writes
// what each receives, with the structured data as mmpstrucdata parsed it,
// to its own file.
func rsyslogConf(dir string, pki testPKI, withTLS bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"64k\"", dir)
	if withTLS {
		fmt.Fprintf(&b, " DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q",
			pki.caFile, pki.certFile, pki.keyFile)
	}
	b.WriteString(")\nmodule(load=\"imtcp\")\nmodule(load=\"mmpstrucdata\")\n")
	b.WriteString("template(name=\"fields\" type=\"list\") {\n")
	for i, f := range rsyslogFields {
		sep := "|"
		if i == len(rsyslogFields)-1 {
			sep = `\n`
		}
		fmt.Fprintf(&b, "  property(name=%q) constant(value=%q)\n", f, sep)
	}
	b.WriteString("}\n")
	for _, in := range []string{"tcp", "tls"} {
		if in == "tls" && !withTLS {
			continue
		}
		fmt.Fprintf(&b, "ruleset(name=%q) {\n  action(type=\"mmpstrucdata\")\n  action(type=\"omfile\" file=%q template=\"fields\")\n}\n",
			in, filepath.Join(dir, in+".out"))
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"0\" listenPortFileName=%q ruleset=%q",
			filepath.Join(dir, in+".port"), in)
		if in == "tls" {
			b.WriteString(` streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"`)
		}
		b.WriteString(")\n")
	}
	// The template's "\n" must reach rsyslog as backslash-n.
	return strings.ReplaceAll(b.String(), `"\\n"`, `"\n"`)
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func findRsyslogd() (string, error) {
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p, nil
	}
	// /usr/sbin is not on every user's PATH.
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err == nil {
		return "/usr/sbin/rsyslogd", nil
	}
	return "", errors.New("rsyslogd not installed (Debian package rsyslog)")
}

// haveGTLS reports whether rsyslog's GnuTLS driver (Debian package
// rsyslog-gnutls) is installed.
func haveGTLS() bool {
	for _, pattern := range []string{"/usr/lib/*/rsyslog/lmnsd_gtls.so", "/usr/lib/rsyslog/lmnsd_gtls.so", "/usr/lib64/rsyslog/lmnsd_gtls.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// startRsyslogd runs rsyslogd in the foreground and stops it when the test
// ends, however it ends.
func startRsyslogd(t *testing.T, bin, conf, dir string) *lockedBuffer {
	t.Helper()
	if out, err := exec.Command(bin, "-N1", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd rejects the test config: %v\n%s\n%s", err, out, readFile(conf))
	}
	// The context is the backstop: a test that hangs past it still
	// leaves no rsyslogd behind.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, bin, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		defer cancel()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", logs.String())
		}
	})
	return logs
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitPort reads the port rsyslogd wrote once its listener is up.
func waitPort(t *testing.T, path string, logs *lockedBuffer) string {
	t.Helper()
	var port string
	waitFor(t, filepath.Base(path), 15*time.Second, func() bool {
		port = strings.TrimSpace(readFile(path))
		_, err := strconv.Atoi(port)
		return err == nil && port != "0"
	})
	return port
}

// TestRsyslogRoundTrip sends alerts to a real rsyslogd over TCP and TLS
// and reads back what rsyslog parsed: MSGID, the structured-data fields
// (unescaped by mmpstrucdata) and the whole message.
func TestRsyslogRoundTrip(t *testing.T) {
	bin, err := findRsyslogd()
	if err != nil {
		t.Skip(err)
	}
	withTLS := haveGTLS()
	dir := t.TempDir()
	pki := newTestPKI(t, dir, "localhost")
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(rsyslogConf(dir, pki, withTLS)), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := startRsyslogd(t, bin, conf, dir)

	opts := SinkOptions{Hostname: "gw-test", PID: 4242, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	transports := map[string]SinkConfig{
		"tcp": {Type: "syslog", Address: "tcp://127.0.0.1:" + waitPort(t, filepath.Join(dir, "tcp.port"), logs), Facility: "local4"},
	}
	if withTLS {
		transports["tls"] = SinkConfig{Type: "syslog", Address: "tls://127.0.0.1:" + waitPort(t, filepath.Join(dir, "tls.port"), logs),
			CA: pki.caFile, Facility: "local4"}
	} else {
		t.Log("rsyslog's gtls driver (Debian package rsyslog-gnutls) is not installed: TLS not tested")
	}
	var sinks []*Sink
	for _, cfg := range transports {
		s, err := OpenSink(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
	}

	d := New(Options{}, sinks...)
	d.Raise(Alert{Type: TypeDaemonStarted})
	d.Emit(engine.Event{
		Type: engine.EventDeny, Time: time.Now().UnixNano(), Layer: engine.LayerMicro, Reason: engine.ReasonNoAllowRule,
		Device: "camera-1", Rule: `cams "nvr" \ [only]`, Src: addr("10.0.0.5"), Dst: addr("10.0.1.1"), Proto: 6, DPort: 22,
	})
	d.Emit(engine.Event{
		Type: engine.EventSpoof, Time: time.Now().UnixNano(), Layer: engine.LayerIdentify, Reason: engine.ReasonSpoofedAddr,
		Device: "küche-lampe", Src: addr("fd00::17"),
	})
	d.Raise(Alert{Type: TypePolicyReloadFailed, Reason: "rules/home.toml:12:3: " + strings.Repeat("a long error ", 300)})
	d.call(func() {})
	sent := d.Recent(0)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("config:\n%s\nreceived over tcp:\n%s\nreceived over tls:\n%s", readFile(conf),
				readFile(filepath.Join(dir, "tcp.out")), readFile(filepath.Join(dir, "tls.out")))
		}
	})
	if len(sent) != 4 {
		t.Fatalf("%d alerts passed the limiter, want 4", len(sent))
	}

	for name := range transports {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name+".out")
			var lines []string
			waitFor(t, "rsyslog to write "+filepath.Base(out), 15*time.Second, func() bool {
				lines = strings.Split(strings.TrimSuffix(readFile(out), "\n"), "\n")
				return len(lines) >= len(sent)
			})
			if len(lines) != len(sent) {
				t.Fatalf("rsyslog wrote %d lines, want %d:\n%s", len(lines), len(sent), strings.Join(lines, "\n"))
			}
			for i, a := range sent {
				got := strings.SplitN(lines[i], "|", len(rsyslogFields))
				want := []string{a.Type.String(), "picoseg", "4242", "gw-test", "local4", a.Severity.String(),
					a.Type.String(), a.Device, "", "", a.Proto, "", "", a.Rule, strconv.Itoa(a.Count), a.Message}
				if a.Src.IsValid() {
					want[8] = a.Src.String()
				}
				if a.Dst.IsValid() {
					want[9] = a.Dst.String()
				}
				if hasPorts(a.Proto) {
					want[11] = strconv.Itoa(int(a.DPort))
				}
				if a.Layer != engine.LayerNone {
					want[12] = a.Layer.String()
				}
				if len(got) != len(want) {
					t.Errorf("line %d has %d fields: %q", i, len(got), lines[i])
					continue
				}
				for f := range want {
					if got[f] != want[f] {
						t.Errorf("alert %d (%s): rsyslog's %s = %.80q, want %.80q", i, a.Type, rsyslogFields[f], got[f], want[f])
					}
				}
			}
		})
	}
}
