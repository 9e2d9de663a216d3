package daemon

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
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
	// InventoryState overrides the policy's [inventory] state file.
	InventoryState string
	// LearnRecord is where the daemon keeps its record of the flows
	// devices open, for `learn --from-daemon` (saved every minute and at
	// stop; "" keeps none). Meant for monitor mode.
	LearnRecord string
	// Version is reported by status.
	Version string
	// Logger receives the daemon's structured log (default: text to
	// stderr).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Signals delivers the process's signals: SIGHUP reloads the policy,
	// any other stops the daemon. Nil: only ctx stops it.
	Signals <-chan os.Signal
	// Lock overrides the policy's [daemon] lock file.
	Lock string
}

// load is Load with the daemon's options and the gateway's addresses,
// logging warnings.
func load(opts *Options, log *slog.Logger, gateway []netip.Addr) (*Loaded, error) {
	l, warnings, err := loadWith(opts.ConfigPath, opts.Monitor, gateway)
	for _, w := range warnings {
		log.Warn("policy warning", "at", w.Pos.String(), "warning", w.Msg)
	}
	return l, err
}

// localAddrs lists the gateway's own addresses, which "gateway" matches.
func localAddrs() []netip.Addr {
	return policy.HostAddrs()
}

// sortedAddrs sorts addrs and drops repeats, so that two readings compare.
func sortedAddrs(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
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
