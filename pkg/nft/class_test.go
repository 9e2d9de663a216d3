package nft

import (
	"testing"
	"time"
	_ "time/tzdata" // zones with daylight saving time, whatever the system has
)

// inWindow is the obvious reading of a local window, as the engine reads
// it: a range that wraps past midnight belongs to the day it started on.
func inWindow(ranges []DayRange, days uint8, t time.Time) bool {
	has := func(d time.Weekday) bool { return days == 0 || days&(1<<uint(d)) != 0 }
	minute := t.Hour()*60 + t.Minute()
	if len(ranges) == 0 {
		return has(t.Weekday())
	}
	for _, r := range ranges {
		if r.Start < r.End {
			if minute >= r.Start && minute < r.End && has(t.Weekday()) {
				return true
			}
			continue
		}
		if minute >= r.Start && has(t.Weekday()) || minute < r.End && has((t.Weekday()+6)%7) {
			return true
		}
	}
	return false
}

func openAt(spans []WeekSpan, t time.Time) bool {
	at := uint32(mod(t.Unix(), weekSeconds))
	for _, s := range spans {
		if at >= s.From && at < s.To {
			return true
		}
	}
	return false
}

// kernelDrops simulates the class chain's window rules at t the way the
// kernel evaluates them: `meta day` in the kernel's zone, `meta hour` in
// UTC.
func kernelDrops(pieces []hourPiece, west int64, t time.Time) bool {
	u := t.Unix()
	day := uint8(mod(floorDiv(u-west, daySeconds)+4, 7))
	hour := uint32(mod(u, daySeconds))
	for _, p := range pieces {
		if p.Day == day && hour >= p.From && hour < p.To {
			return true
		}
	}
	return false
}

const (
	mon, tue, wed, thu, fri, sat, sun = 1 << time.Monday, 1 << time.Tuesday, 1 << time.Wednesday, 1 << time.Thursday, 1 << time.Friday, 1 << time.Saturday, 1 << time.Sunday
)

// TestWeekWindowMatchesLocalTime folds windows of several zones onto the
// UTC week and checks every few minutes of the week (and each second
// around the boundaries) against the local reading: windows that cross
// midnight in UTC but not locally and the other way round, days that
// shift across UTC midnight, half-hour and 45-minute offsets, and weeks
// holding a daylight saving change either way.
func TestWeekWindowMatchesLocalTime(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe"}
	windows := []struct {
		name   string
		ranges []DayRange
		days   uint8
	}{
		{"office hours on weekdays", []DayRange{{6 * 60, 23 * 60}}, mon | tue | wed | thu | fri},
		{"night wrapping midnight", []DayRange{{22 * 60, 2 * 60}}, 0},
		{"wrap on friday only", []DayRange{{23 * 60, 60}}, fri},
		{"weekend all day", nil, sat | sun},
		{"two ranges, to 24:00", []DayRange{{0, 30}, {20 * 60, 24 * 60}}, sun | wed},
		{"every day, early", []DayRange{{60, 3 * 60}}, 0},
	}
	nows := []string{
		"2026-03-26T10:17:23Z", // the week of Europe's spring change
		"2026-10-29T23:59:59Z", // Europe's autumn change: 25-hour Sunday
		"2026-03-05T04:00:00Z", // New York's change on 8 March
		"2026-10-31T12:00:00Z", // New York's change on 1 November
		"2026-04-01T00:00:00Z", // Lord Howe's half-hour change on 5 April
		"2026-07-15T08:30:00Z", // no change anywhere
	}
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range windows {
			for _, n := range nows {
				now, _ := time.Parse(time.RFC3339, n)
				spans := WeekWindow(w.ranges, w.days, loc, now)
				check := func(at time.Time) {
					if got, want := openAt(spans, at), inWindow(w.ranges, w.days, at.In(loc)); got != want {
						t.Fatalf("%s, %s, week from %s: at %s (%s) open = %v, want %v; spans %v",
							zone, w.name, n, at.UTC().Format(time.RFC3339), at.In(loc).Format("Mon 15:04 MST"), got, want, spans)
					}
				}
				for at := now; at.Before(now.Add(7 * 24 * time.Hour)); at = at.Add(7 * time.Minute) {
					check(at)
				}
				for _, s := range spans {
					for _, edge := range []uint32{s.From, s.To} {
						base := now.Unix() - mod(now.Unix(), weekSeconds) + int64(edge)
						for _, d := range []int64{-1, 0, 1, weekSeconds - 1, weekSeconds, weekSeconds + 1} {
							if at := time.Unix(base+d, 0); !at.Before(now) && at.Before(now.Add(7*24*time.Hour)) {
								check(at)
							}
						}
					}
				}
			}
		}
	}
}

// TestKernelPiecesAgreeWithWeek: the kernel's `meta day` follows its own
// time zone (sys_tz), `meta hour` UTC; the pieces drop exactly the closed
// part of the week whatever that zone is.
func TestKernelPiecesAgreeWithWeek(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 4, 9, 0, 0, 0, time.UTC)
	for _, open := range [][]WeekSpan{
		WeekWindow([]DayRange{{6 * 60, 23 * 60}}, mon|tue|wed|thu|fri, loc, now),
		WeekWindow([]DayRange{{22 * 60, 2 * 60}}, sat, loc, now),
		nil, // never open
		{{0, weekSeconds}},
	} {
		for _, west := range []int64{0, 5 * 3600, -330 * 60, -14 * 3600, 12 * 3600} {
			pieces := kernelPieces(closed(open), west)
			for at := now; at.Before(now.Add(8 * 24 * time.Hour)); at = at.Add(time.Minute) {
				if got, want := kernelDrops(pieces, west, at), !openAt(open, at); got != want {
					t.Fatalf("kernel zone %ds west, at %s: drops = %v, want %v (open %v, pieces %v)", west, at.Format(time.RFC3339), got, want, open, pieces)
				}
			}
			for _, p := range pieces {
				if p.From >= p.To || p.To > daySeconds || p.Day > 6 {
					t.Errorf("bad piece %+v", p)
				}
			}
		}
	}
}

// TestWeekWindowChangesWithTheOffset: the fold of one window differs
// between a week before and a week after a daylight saving change, which
// is what makes the daemon build the ruleset again; in a week without a
// change it stays the same as now moves on.
func TestWeekWindowChangesWithTheOffset(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	r := []DayRange{{6 * 60, 23 * 60}}
	same := func(a, b []WeekSpan) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	july := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	if !same(WeekWindow(r, 0, loc, july), WeekWindow(r, 0, loc, july.Add(10*time.Second))) {
		t.Error("the fold changed within a week without a change of offset")
	}
	summer, winter := WeekWindow(r, 0, loc, time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC)), WeekWindow(r, 0, loc, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC))
	if same(summer, winter) {
		t.Fatal("the fold is the same in summer and winter time")
	}
	// 06:00 in Berlin is 04:00 UTC in summer, 05:00 UTC in winter.
	mondaySummer := time.Date(2026, 10, 19, 4, 30, 0, 0, time.UTC)
	if !openAt(summer, mondaySummer) || openAt(winter, mondaySummer) {
		t.Errorf("04:30 UTC on a Monday: open in summer %v (want true), in winter %v (want false)", openAt(summer, mondaySummer), openAt(winter, mondaySummer))
	}
}
