package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
)

// Status is what the daemon tells `picoseg status`.
type Status struct {
	Version     string    `json:"version"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"started_at"`
	Uptime      float64   `json:"uptime_seconds"`
	PolicyFile  string    `json:"policy_file"`
	PolicyHash  string    `json:"policy_hash"`
	Generation  uint32    `json:"policy_generation"`
	Mode        string    `json:"mode"`
	QueueMethod string    `json:"queue_method"`
	OnDown      string    `json:"on_daemon_down"`
	OnQueueFull string    `json:"on_queue_full"`
	// BridgeFilter lists the zones whose same-bridge traffic is judged.
	BridgeFilter []string      `json:"bridge_filter_zones"`
	Queues       []QueueStatus `json:"queues"`
	// Verdicts counts every packet's final verdict by deciding layer, and
	// Flows every new flow's.
	Verdicts       map[string]map[string]uint64 `json:"verdicts_by_layer"`
	Flows          map[string]map[string]uint64 `json:"flows_by_layer"`
	Packets        uint64                       `json:"packets_judged"`
	CacheHits      uint64                       `json:"cache_hits"`
	NewFlows       uint64                       `json:"new_flows"`
	Undecodable    uint64                       `json:"undecodable"`
	FlowsTracked   int                          `json:"flows_tracked"`
	FlowEvictions  uint64                       `json:"flow_evictions"`
	Events         uint64                       `json:"events"`
	Reloads        uint64                       `json:"reloads"`
	ReloadFailures uint64                       `json:"reload_failures"`
	// RulesetRestores counts the times the table was found missing or
	// emptied (`nft flush ruleset`) and installed again.
	RulesetRestores uint64 `json:"ruleset_restores"`
	// IfaceChanges counts the interface changes applied: a port that
	// joined or left a zone's bridge, a zone's bridge created, an address
	// the gateway gained or lost.
	IfaceChanges uint64 `json:"interface_changes"`
	// Privileges are the user and capabilities the daemon runs with.
	Privileges *Privileges `json:"privileges,omitempty"`
	// DNSNames is how full the table of names DNS answers gave devices
	// is, when the policy has "dns:" destinations.
	DNSNames *DNSNamesStatus `json:"dns_names,omitempty"`
	// Alerts are the alert dispatcher's counters, per sink too.
	Alerts alert.Stats `json:"alerts"`
	// Kernel counts what the ruleset saw: packets fast-pathed, queued,
	// dropped by flow mark, by the new-flow guard, by verdict.
	Kernel map[string]uint64 `json:"kernel"`
	// SPA counts SPA packets by outcome: granted, rejected, rate_limited.
	SPA map[string]uint64 `json:"spa,omitempty"`
}

// Privileges are the identity and capabilities of the daemon process.
type Privileges struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Capabilities are the effective capabilities, e.g. ["cap_net_admin"];
	// "all" when every capability is held.
	Capabilities []string `json:"capabilities"`
}

// clipLeft shortens s to n characters by cutting its start: the end of a
// path says more than its beginning.
func clipLeft(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "~" + s[len(s)-n+1:]
}

// QueueStatus is one queue's counters.
type QueueStatus struct {
	Queue    uint16 `json:"queue"`
	Received uint64 `json:"received"`
	Accepted uint64 `json:"accepted"`
	Dropped  uint64 `json:"dropped"`
	ENOBUFS  uint64 `json:"enobufs"`
	Reopens  uint64 `json:"reopens"`
}

// handlers answer the status socket's requests: a request is one line, a
// command and an optional argument ("flows front-cam"); the answer is one
// JSON value.
type handlers map[string]func(arg string) any

// serveStatus answers requests on a unix socket at path, readable and
// writable by root only, until ctx is done. A failure to accept before then
// goes to onErr.
func serveStatus(ctx context.Context, path string, h handlers, onErr func(error)) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket left by a daemon that died is in the way; a live daemon's
	// socket answers, and then this one must not start.
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("status socket %s: another picoseg is running", path)
	}
	os.Remove(path)
	old := umask(0o077)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					onErr(err)
				}
				return
			}
			go answer(c, h)
		}
	}()
	return func() { ln.Close(); os.Remove(path) }, nil
}

func answer(c net.Conn, h handlers) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	fn, ok := h[cmd]
	if !ok {
		json.NewEncoder(c).Encode(map[string]string{"error": fmt.Sprintf("unknown request %q", cmd)})
		return
	}
	json.NewEncoder(c).Encode(fn(arg))
}

// Query sends one request ("status", "flows", "flows DEVICE", "alerts",
// "devices") to the daemon listening at path and decodes its answer into
// out.
func Query(path, request string, out any) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no picoseg daemon: %s does not exist", path)
		}
		return fmt.Errorf("no picoseg daemon answers on %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request+"\n"); err != nil {
		return err
	}
	var raw json.RawMessage
	if err := json.NewDecoder(c).Decode(&raw); err != nil {
		return fmt.Errorf("reading the answer from %s: %w", path, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return json.Unmarshal(raw, out)
}

// QueryStatus asks the daemon listening on the socket at path for its
// status.
func QueryStatus(path string) (Status, error) {
	var s Status
	err := Query(path, "status", &s)
	return s, err
}

// WriteText prints a status for people, in lines that fit 80 columns.
func (s *Status) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "picoseg %s, pid %d, up %s\n", s.Version, s.PID, time.Duration(s.Uptime*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(tw, "policy\t%s\n", clipLeft(s.PolicyFile, 64))
	fmt.Fprintf(tw, "\thash %s, generation %d, %s mode\n", s.PolicyHash, s.Generation, s.Mode)
	fmt.Fprintf(tw, "queue path\t%s; daemon down: %s; queue full: %s\n", s.QueueMethod, s.OnDown, s.OnQueueFull)
	if len(s.BridgeFilter) > 0 {
		fmt.Fprintf(tw, "bridge filter\t%v\n", s.BridgeFilter)
	}
	fmt.Fprintf(tw, "packets judged\t%d (%d from the flow cache), %d new flows, %d undecodable\n", s.Packets, s.CacheHits, s.NewFlows, s.Undecodable)
	fmt.Fprintf(tw, "flows tracked\t%d (%d evicted); events %d; reloads %d (%d failed)\n", s.FlowsTracked, s.FlowEvictions, s.Events, s.Reloads, s.ReloadFailures)
	if s.RulesetRestores > 0 {
		fmt.Fprintf(tw, "table\tlost and installed again %d times\n", s.RulesetRestores)
	}
	if s.IfaceChanges > 0 {
		fmt.Fprintf(tw, "interfaces\t%d changes applied (bridge ports, bridges, addresses)\n", s.IfaceChanges)
	}
	if s.SPA != nil {
		fmt.Fprintf(tw, "spa knocks\t%d granted, %d refused, %d rate limited (status grants lists the open grants)\n", s.SPA["granted"], s.SPA["rejected"], s.SPA["rate_limited"])
	}
	if p := s.Privileges; p != nil {
		caps := strings.Join(p.Capabilities, " ")
		if len(p.Capabilities) > 3 {
			caps = fmt.Sprintf("%d (--json lists them)", len(p.Capabilities))
		}
		fmt.Fprintf(tw, "runs as\tuid %d gid %d, capabilities %s\n", p.UID, p.GID, caps)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "QUEUE\tRECEIVED\tACCEPTED\tDROPPED\tENOBUFS\tREOPENS")
	for _, q := range s.Queues {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\n", q.Queue, q.Received, q.Accepted, q.Dropped, q.ENOBUFS, q.Reopens)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "LAYER\tFLOWS PASSED\tFLOWS DROPPED\tPKTS PASSED\tPKTS DROPPED")
	for _, l := range []string{"decode", "identify", "segment", "micro", "pico"} {
		fa := s.Flows[l]["accept"] + s.Flows[l]["need-more"]
		pa := s.Verdicts[l]["accept"] + s.Verdicts[l]["need-more"]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", l, fa, s.Flows[l]["drop"], pa, s.Verdicts[l]["drop"])
	}
	fmt.Fprintf(tw, "alerts\t%d sent, %d folded into summaries, %d suppressed, %d events lost\n", s.Alerts.AlertsOut, s.Alerts.Folded, s.Alerts.Suppressed, s.Alerts.EventsDropped)
	for _, k := range s.Alerts.Sinks {
		fmt.Fprintf(tw, "  %s\t%d sent, %d dropped, %d errors\n", k.Name, k.Sent, k.Dropped, k.Errors)
	}
	if len(s.Kernel) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "kernel\tfast path %d, queued %d, class checks tripped %d\n", s.Kernel["fast_path"], s.Kernel["queued"], s.Kernel["tripped"])
		fmt.Fprintf(tw, "\tdropped: by guard %d, by flow mark %d, by verdict %d\n", s.Kernel["guard_dropped"], s.Kernel["flow_dropped"], s.Kernel["verdict_dropped"])
		fmt.Fprintf(tw, "\tnot handed over: queue full %d, socket full %d\n", s.Kernel["queue_full_dropped"], s.Kernel["queue_undelivered"])
	}
	return tw.Flush()
}

// DNSNamesStatus counts the names table's devices, addresses and
// outstanding queries.
type DNSNamesStatus struct {
	Devices   int `json:"devices"`
	Addresses int `json:"addresses"`
	Queries   int `json:"outstanding_queries"`
}
