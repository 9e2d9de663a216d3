//go:build linux

package daemon

import (
	"reflect"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

// kernelClasses are the pico classes of pol as the kernel checks them at
// now: time windows folded onto the UTC week with the offsets the policy's
// time zone has over the coming week. In monitor mode the kernel drops
// nothing on picoseg's behalf: only the byte bound stays, which queues a
// packet for the engine to judge (and, in monitor mode, report).
func kernelClasses(pol *policy.Policy, now time.Time) []nft.Class {
	out := make([]nft.Class, len(pol.Classes))
	for i := range pol.Classes {
		c := &pol.Classes[i]
		k := nft.Class{Bytes: c.Bytes}
		if pol.Mode == config.ModeMonitor {
			out[i] = k
			continue
		}
		k.HasSize, k.SizeMin, k.SizeMax = c.HasSize, c.SizeMin, c.SizeMax
		k.NewFlows, k.NewFlowPer = uint32(c.NewFlows), c.NewFlowPer
		if c.HasWindow() {
			ranges := make([]nft.DayRange, len(c.Hours))
			for j, h := range c.Hours {
				ranges[j] = nft.DayRange{Start: h.Start, End: h.End}
			}
			k.HasWindow, k.Open = true, nft.WeekWindow(ranges, uint8(c.Days), pol.Location, now)
		}
		out[i] = k
	}
	return out
}

// refreshClasses installs the ruleset again when the kernel's form of the
// time windows has changed since it was installed: the policy's time zone
// changes its offset from UTC within the coming week (daylight saving
// time), or the clock jumped. The kernel compares in UTC, so without this
// a window would open and close an hour off after the change. The
// periodic pass calls it; installing is one transaction, as on reload.
func (d *Daemon) refreshClasses(now time.Time) {
	pol := d.eng.Policy()
	classes := kernelClasses(pol, now)
	if reflect.DeepEqual(classes, d.applied.opts.Classes) {
		return
	}
	o := d.applied.opts
	o.Classes = classes
	if err := d.installKernelPath(o, d.applied.ports); err != nil {
		d.log.Error("installing the time windows' kernel checks for the new UTC offset", "err", err)
		return
	}
	d.log.Info("time windows' kernel checks installed again: the time zone's offset from UTC changes this week", "zone", pol.Location.String())
}
