package daemon

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
	"github.com/picoseg/picoseg/pkg/spa"
)

// GrantView is one open SPA grant, for `picoseg status grants`.
type GrantView struct {
	Src     string    `json:"src"`
	Device  string    `json:"device,omitempty"`
	Rule    string    `json:"rule"`
	Service string    `json:"service"`
	Key     string    `json:"key"`
	User    string    `json:"user"`
	Until   time.Time `json:"until"`
	// Remaining is the window left for new connections, in seconds.
	Remaining float64 `json:"remaining"`
}

// grantViews lists the SPA grants open at now.
func grantViews(eng *engine.Engine, now time.Time) []GrantView {
	pol := eng.Policy()
	out := []GrantView{}
	for _, g := range eng.SPAGrants(now.UnixNano()) {
		until := time.Unix(0, g.Until)
		out = append(out, GrantView{
			Src: g.Src.String(), Device: pol.DeviceName(pol.DeviceByAddr(g.Src)), Rule: g.Rule,
			Service: fmt.Sprintf("%s/%d", packet.ProtoName(g.Proto), g.Port), Key: g.Key, User: g.User,
			Until: until, Remaining: until.Sub(now).Seconds(),
		})
	}
	return out
}

// WriteGrants prints the open SPA grants as a table.
func WriteGrants(w io.Writer, grants []GrantView) error {
	tw := tabwriter.NewWriter(w, 0, 2, 1, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tDEVICE\tRULE\tSERVICE\tKEY\tUSER\tLEFT")
	for _, g := range grants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0fs\n", clip(g.Src, 15), clip(orDash(g.Device), 12), clip(g.Rule, 16),
			g.Service, clip(g.Key, 12), clip(g.User, 12), g.Remaining)
	}
	return tw.Flush()
}

// spaOptions opens what the engine's SPA needs from the disk: the replay
// cache, kept in the policy's replay_file (its directory made if need be,
// readable by the daemon alone), so that a packet captured before a
// restart opens nothing after it. A policy without SPA keys needs no
// file; a reload that adds the first keys keeps the replay cache in
// memory until the next start.
func spaOptions(pol *policy.Policy, now time.Time) (engine.SPAOptions, error) {
	if !pol.SPA.Enabled() {
		return engine.SPAOptions{}, nil
	}
	path := pol.SPA.ReplayFile
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return engine.SPAOptions{}, fmt.Errorf("spa replay cache: %w", err)
	}
	c, err := spa.OpenReplayCache(path, 0, now.UnixNano())
	if err != nil {
		return engine.SPAOptions{}, fmt.Errorf("spa replay cache: %w", err)
	}
	return engine.SPAOptions{Replay: c}, nil
}

// spaCounts are the engine's SPA counters for the status, nil when the
// policy has no SPA keys.
func spaCounts(eng *engine.Engine) map[string]uint64 {
	if !eng.Policy().SPA.Enabled() {
		return nil
	}
	s := eng.SPAStats()
	return map[string]uint64{"granted": s.Granted.Load(), "rejected": s.Rejected.Load(), "rate_limited": s.Limited.Load()}
}
