package config

import (
	"math"
	"math/bits"
	"time"
)

// Defaults of the [daemon] settings, used when the policy leaves them out.
// The new-flow rate defaults to 200/s and the timezone to time.Local.
const (
	DefaultMarkMask      = 0x000000f8
	DefaultQueues        = 2
	DefaultQueueBase     = 4200
	DefaultFlowTableSize = 65536
	DefaultQueueMaxLen   = 4096
	DefaultSocket        = "/run/picoseg/picoseg.sock"
	// DefaultLock is the file a running daemon holds locked, so that a
	// second one cannot take over its table (Daemon.Lock "" means this).
	DefaultLock = "/run/picoseg/picoseg.lock"
)

// Bounds of the [daemon] settings.
const (
	maxQueues        = 64
	minFlowTableSize = 1024
	minQueueMaxLen   = 64
	maxQueueMaxLen   = 1 << 20
	maxFlowTableSize = 4_000_000
	// minMarkBits: the mark must tell apart at least accepted, dropped and
	// suspicious flows and still leave room for a pico class.
	minMarkBits = 3
)

func defaultDaemon(file string) Daemon {
	return Daemon{
		Mode:          ModeEnforce,
		Timezone:      time.Local,
		TimezoneName:  "Local",
		MarkMask:      DefaultMarkMask,
		OnDaemonDown:  "open",
		OnQueueFull:   "open",
		Queues:        DefaultQueues,
		QueueBase:     DefaultQueueBase,
		NewFlowRate:   Rate{Count: 200, Per: time.Second},
		FlowTableSize: DefaultFlowTableSize,
		QueueMaxLen:   DefaultQueueMaxLen,
		Socket:        DefaultSocket,
		Pos:           Pos{File: file},
	}
}

// daemon reads the [daemon] table over the defaults.
func (b *builder) daemon(t table) {
	t.name = "[daemon]"
	t.checkKeys("mode", "timezone", "mark_mask", "on_daemon_down", "on_queue_full",
		"queues", "queue_base", "new_flow_rate", "flow_table_size", "queue_max_len", "socket", "lock", "user")
	d := &b.cfg.Daemon
	d.Pos = t.Pos()
	daemonJudging(t, d)
	daemonQueues(t, d)
	daemonFiles(t, d)
}

// daemonJudging reads how the daemon judges: mode, time zone, mark bits and
// what happens when it is down or its queue is full.
func daemonJudging(t table, d *Daemon) {
	if s, pos, ok := t.str("mode"); ok {
		switch s {
		case "enforce":
			d.Mode = ModeEnforce
		case "monitor":
			d.Mode = ModeMonitor
		default:
			t.errorf(pos, `mode must be "enforce" or "monitor", not %q`, s)
		}
	}
	if s, pos, ok := t.str("timezone"); ok {
		// time.LoadLocation("") is UTC, which is never what an empty
		// string in a policy means.
		loc, err := time.LoadLocation(s)
		if s == "" || err != nil {
			t.errorf(pos, "bad timezone %q: want an IANA name such as Europe/Brussels, UTC or Local", s)
		} else {
			d.Timezone, d.TimezoneName = loc, s
		}
	}
	if n, pos, ok := t.integer("mark_mask"); ok {
		switch {
		case n <= 0 || n > math.MaxUint32:
			t.errorf(pos, "mark_mask must be a non-zero 32-bit mask")
		case bits.OnesCount32(uint32(n)) < minMarkBits:
			t.errorf(pos, "mark_mask %#x has %d bits set; picoseg needs at least %d", n, bits.OnesCount32(uint32(n)), minMarkBits)
		default:
			d.MarkMask = uint32(n)
		}
	}
	if s, pos, ok := t.str("on_daemon_down"); ok {
		if s != "open" && s != "closed" {
			t.errorf(pos, `on_daemon_down must be "open" or "closed", not %q`, s)
		} else {
			d.OnDaemonDown = s
		}
	}
	if s, pos, ok := t.str("on_queue_full"); ok {
		if s != "open" && s != "drop" {
			t.errorf(pos, `on_queue_full must be "open" or "drop", not %q`, s)
		} else {
			d.OnQueueFull = s
		}
	}
}

// daemonQueues reads the queues, their new-flow guard and the flow table.
func daemonQueues(t table, d *Daemon) {
	if n, pos, ok := t.integer("queues"); ok {
		if n < 1 || n > maxQueues {
			t.errorf(pos, "queues must be 1-%d, not %d", maxQueues, n)
		} else {
			d.Queues = int(n)
		}
	}
	if n, pos, ok := t.integer("queue_base"); ok {
		// The queues are numbered QueueBase .. QueueBase+Queues-1, and
		// queue numbers are 16 bits; 65535 itself is kept free.
		if top := int64(math.MaxUint16 - d.Queues); n < 0 || n > top {
			t.errorf(pos, "queue_base must be 0-%d with %d queues, not %d", top, d.Queues, n)
		} else {
			d.QueueBase = uint16(n)
		}
	}
	if s, pos, ok := t.str("new_flow_rate"); ok {
		if r, err := parseRate(s); err != nil {
			t.errorf(pos, "%v", err)
		} else {
			d.NewFlowRate = r
		}
	}
	if n, pos, ok := t.integer("flow_table_size"); ok {
		if n < minFlowTableSize || n > maxFlowTableSize {
			t.errorf(pos, "flow_table_size must be %d-%d, not %d", minFlowTableSize, maxFlowTableSize, n)
		} else {
			d.FlowTableSize = int(n)
		}
	}
	if n, pos, ok := t.integer("queue_max_len"); ok {
		if n < minQueueMaxLen || n > maxQueueMaxLen {
			t.errorf(pos, "queue_max_len must be %d-%d, not %d", minQueueMaxLen, maxQueueMaxLen, n)
		} else {
			d.QueueMaxLen = uint32(n)
		}
	}
}

// daemonFiles reads the daemon's socket, lock file and user.
func daemonFiles(t table, d *Daemon) {
	if s, pos, ok := t.str("socket"); ok {
		if s == "" {
			t.errorf(pos, "socket must not be empty")
		} else {
			d.Socket = s
		}
	}
	if s, pos, ok := t.str("lock"); ok {
		if s == "" {
			t.errorf(pos, "lock must not be empty")
		} else {
			d.Lock = s
		}
	}
	if s, pos, ok := t.str("user"); ok {
		if s == "" || s == "root" || s == "0" {
			t.errorf(pos, "user must name an unprivileged user, not %q (leave it out to stay root)", s)
		} else {
			d.User = s
		}
	}
}
