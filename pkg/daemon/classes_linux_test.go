//go:build linux

package daemon

import (
	"testing"
	"time"
	_ "time/tzdata" // a zone with daylight saving time, whatever the system has

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

func windowPolicy(mode config.Mode) *policy.Policy {
	loc, _ := time.LoadLocation("Europe/Berlin")
	return &policy.Policy{
		Mode: mode, Location: loc,
		Classes: []policy.Class{{}, {Bytes: 5e6, Hours: []config.TimeRange{{Start: 6 * 60, End: 23 * 60}}, HasSize: true, SizeMin: 40, SizeMax: 1500, NewFlows: 10, NewFlowPer: time.Second}},
	}
}

// The kernel's classes carry the window folded in the policy's zone, and
// change (so the pass installs them again) when the zone's offset changes
// within the coming week; in monitor mode only the byte bound, which
// drops nothing, stays.
func TestKernelClasses(t *testing.T) {
	summer := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	got := kernelClasses(windowPolicy(config.ModeEnforce), summer)
	if len(got) != 2 || got[0].HasWindow || !got[1].HasWindow || !got[1].HasSize || got[1].Bytes != 5e6 || got[1].NewFlows != 10 {
		t.Fatalf("classes %+v", got)
	}
	// 06:00-23:00 in Berlin summer time is 04:00-21:00 UTC: Thursday 1
	// October from 04:00 is the first span after the week's start.
	if s := got[1].Open[0]; s != (nft.WeekSpan{From: 4 * 3600, To: 21 * 3600}) {
		t.Errorf("first span %+v, want 04:00-21:00 UTC on Thursday", s)
	}
	if same := kernelClasses(windowPolicy(config.ModeEnforce), summer.Add(10*time.Second)); !equalClasses(got, same) {
		t.Error("the classes changed within a week without a change of offset")
	}
	if before := kernelClasses(windowPolicy(config.ModeEnforce), time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC)); equalClasses(got, before) {
		t.Error("the week of the change to winter time folds the same as a summer week")
	}
	mon := kernelClasses(windowPolicy(config.ModeMonitor), summer)
	if mon[1].HasWindow || mon[1].HasSize || mon[1].NewFlows != 0 || mon[1].Bytes != 5e6 {
		t.Errorf("monitor mode: %+v, want the byte bound alone", mon[1])
	}
}

func equalClasses(a, b []nft.Class) bool {
	o1, o2 := nft.Options{Classes: a}, nft.Options{Classes: b}
	return sameKernelPath(o1, o2)
}
