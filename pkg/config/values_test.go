package config

import (
	"testing"
	"time"
)

// The commands read protocols as services name them: the same word gives
// the same number.
func TestParseProtocolSpeaksThePolicyLanguage(t *testing.T) {
	for _, name := range []string{"tcp", "udp", "icmp", "icmpv6", "proto/47"} {
		svc, err := parseService(name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParseProtocol(name); err != nil || got != svc.Proto {
			t.Errorf("ParseProtocol(%q) = %d, %v; the service says %d", name, got, err, svc.Proto)
		}
	}
	if got, err := ParseProtocol("132"); err != nil || got != 132 {
		t.Errorf(`ParseProtocol("132") = %d, %v`, got, err)
	}
	// 0 is "any protocol" in a service: never a protocol to judge.
	for _, bad := range []string{"", "0", "proto/0", "256", "sctp", "TCP", "-6", "tcp/80"} {
		if got, err := ParseProtocol(bad); err == nil {
			t.Errorf("ParseProtocol(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseInstant(t *testing.T) {
	loc := time.FixedZone("policy", 3600)
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, loc) // a Wednesday
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", now},
		{"2026-11-23T15:04:00Z", time.Date(2026, 11, 23, 15, 4, 0, 0, time.UTC)},
		{"2026-11-23 15:04", time.Date(2026, 11, 23, 15, 4, 0, 0, loc)},
		{"03:00", time.Date(2026, 11, 25, 3, 0, 0, 0, loc)},
		{"wed 12:00", time.Date(2026, 11, 25, 12, 0, 0, 0, loc)},
		{"mon 03:00", time.Date(2026, 11, 30, 3, 0, 0, 0, loc)},
		{"Sun 23:59", time.Date(2026, 11, 29, 23, 59, 0, 0, loc)},
		{"tue 24:00", time.Date(2026, 12, 2, 0, 0, 0, 0, loc)}, // the end of the next tuesday
	} {
		got, err := ParseInstant(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseInstant(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// Days and clocks are those of the policy's windows: no day names it
	// does not know, no clock it would refuse.
	for _, bad := range []string{"monday 03:00", "mo 03:00", "mon 3:00", "25:00", "mon", "noon"} {
		if got, err := ParseInstant(bad, now); err == nil {
			t.Errorf("ParseInstant(%q) = %v, want an error", bad, got)
		}
	}
}
