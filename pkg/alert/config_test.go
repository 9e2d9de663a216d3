package alert

import (
	"errors"
	"strings"
	"testing"
)

func TestSinkConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    SinkConfig
		err  string // substring; "" for valid
	}{
		{"local", SinkConfig{Type: "syslog"}, ""},
		{"local path", SinkConfig{Type: "syslog", Address: "unix:///run/log.sock", Facility: "local3"}, ""},
		{"udp", SinkConfig{Type: "syslog", Address: "udp://192.0.2.1"}, ""},
		{"tcp v6", SinkConfig{Type: "syslog", Address: "tcp://[2001:db8::1]:1514"}, ""},
		{"tls", SinkConfig{Type: "syslog", Address: "tls://logs.example:6514", CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}, ""},
		{"jsonl", SinkConfig{Type: "jsonl", Path: "/var/log/picoseg/alerts.jsonl", MaxSize: 1 << 20, Keep: 3}, ""},
		{"no type", SinkConfig{}, "type: missing"},
		{"bad type", SinkConfig{Type: "sylog"}, `unknown sink type "sylog"`},
		{"bad scheme", SinkConfig{Type: "syslog", Address: "http://x:1"}, "address: "},
		{"no host", SinkConfig{Type: "syslog", Address: "tcp://:514"}, "missing host"},
		{"relative unix", SinkConfig{Type: "syslog", Address: "unix://log"}, "absolute"},
		{"ca without tls", SinkConfig{Type: "syslog", Address: "tcp://x:1", CA: "ca.pem"}, "ca: "},
		{"cert without key", SinkConfig{Type: "syslog", Address: "tls://x:1", Cert: "c.pem"}, "cert: "},
		{"bad facility", SinkConfig{Type: "syslog", Facility: "demon"}, "facility: "},
		{"path on syslog", SinkConfig{Type: "syslog", Path: "/tmp/x"}, "path: "},
		{"jsonl without path", SinkConfig{Type: "jsonl"}, "path: "},
		{"address on jsonl", SinkConfig{Type: "jsonl", Path: "/x", Address: "tcp://x:1"}, "address: "},
		{"negative keep", SinkConfig{Type: "jsonl", Path: "/x", Keep: -1}, "keep: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate = %v, want an error with %q", err, tc.err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%T is not a *ConfigError", err)
			}
		})
	}
}

func TestOpenSinkBadCA(t *testing.T) {
	_, err := OpenSink(SinkConfig{Type: "syslog", Address: "tls://127.0.0.1:1", CA: "/nonexistent/ca.pem"}, SinkOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "ca: ") {
		t.Fatalf("OpenSink with a missing CA file = %v", err)
	}
}
