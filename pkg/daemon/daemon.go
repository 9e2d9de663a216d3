package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/policy"
)

// Options configures Run.
type Options struct {
	// ConfigPath is the policy file.
	ConfigPath string
	// Monitor forces monitor mode whatever the policy says.
	Monitor bool
	// Socket overrides the policy's status socket path.
	Socket string
	// Version is reported by status.
	Version string
	// Logger receives the daemon's structured log (default: text to
	// stderr).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// loaded is a policy read from disk and compiled.
type loaded struct {
	cfg *config.Config
	pol *policy.Policy
}

// load reads, validates and compiles the policy. Every error comes back
// with its FILE:LINE:COL; warnings are logged.
func load(opts *Options, log *slog.Logger) (loaded, error) {
	cfg, warnings, err := config.Load(opts.ConfigPath)
	for _, w := range warnings {
		log.Warn("policy warning", "at", w.Pos.String(), "warning", w.Msg)
	}
	if err != nil {
		return loaded{}, err
	}
	var src []byte
	for _, f := range cfg.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return loaded{}, err
		}
		src = append(src, b...)
	}
	pol, err := policy.Compile(cfg, policy.Options{GatewayAddrs: localAddrs(), Source: src})
	if err != nil {
		return loaded{}, err
	}
	if opts.Monitor {
		pol.Mode = config.ModeMonitor
	}
	return loaded{cfg: cfg, pol: pol}, nil
}

// localAddrs lists the gateway's own addresses, which "gateway" matches.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// interfaceNames maps interface indexes to names in the daemon's namespace.
func interfaceNames() (map[uint32]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	m := make(map[uint32]string, len(ifs))
	for _, i := range ifs {
		m[uint32(i.Index)] = i.Name
	}
	return m, nil
}

// eventLog writes engine events to the daemon's log. It is the engine's
// sink: Emit never blocks (a full buffer counts the event as lost), and a
// goroutine formats and logs what the limiter lets through.
type eventLog struct {
	ch      chan engine.Event
	lost    atomic.Uint64
	emitted atomic.Uint64
}

func newEventLog(ctx context.Context, log *slog.Logger) *eventLog {
	l := &eventLog{ch: make(chan engine.Event, 4096)}
	go func() {
		var window time.Time
		n, suppressed := 0, 0
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-l.ch:
				now := time.Now()
				if now.Sub(window) >= time.Second {
					if suppressed > 0 {
						log.Warn("events suppressed by the log rate limit", "count", suppressed)
					}
					window, n, suppressed = now, 0, 0
				}
				n++
				if n > 20 {
					suppressed++
					continue
				}
				l.emitted.Add(1)
				log.Warn("event", "type", e.Type.String(), "device", e.Device, "layer", e.Layer.String(),
					"rule", e.Rule, "reason", e.Reason.String(), "src", e.Src, "dst", e.Dst,
					"proto", e.Proto, "dport", e.DPort)
			}
		}
	}()
	return l
}

// Emit implements engine.Sink.
func (l *eventLog) Emit(e engine.Event) {
	select {
	case l.ch <- e:
	default:
		l.lost.Add(1)
	}
}

// perSecond turns a policy rate into whole packets per second (at least 1).
func perSecond(r config.Rate) uint32 {
	if r.Count <= 0 || r.Per <= 0 {
		return 0
	}
	v := float64(r.Count) / r.Per.Seconds()
	if v < 1 {
		return 1
	}
	return uint32(v)
}

func statusOf(s *engine.Stats) (verdicts, flows map[string]map[string]uint64) {
	verdicts, flows = map[string]map[string]uint64{}, map[string]map[string]uint64{}
	for _, l := range engine.Layers {
		verdicts[l.String()], flows[l.String()] = map[string]uint64{}, map[string]uint64{}
		for _, v := range []engine.Verdict{engine.Accept, engine.Drop, engine.NeedMore} {
			verdicts[l.String()][v.String()] = s.Verdicts[l][v].Load()
			flows[l.String()][v.String()] = s.Flows[l][v].Load()
		}
	}
	return verdicts, flows
}

func errorf(format string, args ...any) error { return fmt.Errorf("picoseg: "+format, args...) }
