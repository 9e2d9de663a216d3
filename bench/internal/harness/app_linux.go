package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/picoseg/picoseg/bench/internal/load"
	"github.com/picoseg/picoseg/bench/internal/policygen"
	"github.com/picoseg/picoseg/bench/internal/stats"
)

// appVariant is one rule the application-identity rows measure TLS flows
// under.
type appVariant struct {
	key, title, rule string
}

// appVariants are the same rule for the benchmark devices' flows to the
// sink, without and with app = "tls": the flows are the same (a
// ClientHello each), so the difference is what reading it costs.
func appVariants() []appVariant {
	rule := fmt.Sprintf("\n[[allow]]\nname = \"bench-app\"\nfrom = \"group:bench\"\nto = \"zone:wan\"\nservices = [\"tcp/%d\"]\n", load.PortSink)
	return []appVariant{
		{"plain", "a rule without app", rule},
		{"tls", `the same rule with app = "tls" and server_names`, rule + "app = \"tls\"\n[allow.tls]\nserver_names = [\"*.example.com\"]\n"},
	}
}

// appHelloWorkers is how many clients each device runs at once.
const appHelloWorkers = 4

// appRows measures new TLS flows per second, and the packets each sends to
// userspace, under a rule without app and under the same rule with
// app = "tls", alternating in each round.
func (e *env) appRows(ctx context.Context, s *samples) error {
	text := policygen.Generate(e.spec(e.cfg.Devices, e.cfg.Rules, "application identity"))
	// Before the benchmark's own rule: the first rule that matches wins.
	const marker = "\n# The benchmark's own traffic"
	at := strings.Index(text, marker)
	if at < 0 {
		return errors.New("generated policy has no benchmark rule to put the app rule before")
	}
	if s.appFlows == nil {
		s.appFlows, s.appPerFlow = map[string][]float64{}, map[string][]float64{}
	}
	variants := appVariants()
	for round := 1; round <= e.cfg.Rounds; round++ {
		rates := map[string]float64{}
		for i := range variants {
			v := variants[(i+round)%len(variants)]
			path := filepath.Join(e.dir, "app-"+v.key+".toml")
			if err := os.WriteFile(path, []byte(text[:at]+v.rule+text[at:]), 0o600); err != nil {
				return err
			}
			rate, perFlow, failed, err := e.appRound(ctx, path)
			if err != nil {
				return fmt.Errorf("%s: %w", v.key, err)
			}
			rates[v.key] = rate
			s.appFlows[v.key] = append(s.appFlows[v.key], rate)
			s.appPerFlow[v.key] = append(s.appPerFlow[v.key], perFlow)
			e.logf("app round %d/%d, %s: %.0f TLS flows/s, %.2f userspace packets per flow, %d failed", round, e.cfg.Rounds, v.title, rate, perFlow, failed.Failed)
			if failed.Failed > 0 {
				e.logf("  failures: %v", failed.Errors)
			}
		}
		if rates["plain"] > 0 {
			s.appRatio = append(s.appRatio, rates["tls"]/rates["plain"])
		}
	}
	return nil
}

// appRound runs picoseg with the policy at path and the hello clients on
// every device, and returns flows/s, userspace packets per flow and the
// clients' totals (for their failures).
func (e *env) appRound(ctx context.Context, path string) (float64, float64, load.FloodResult, error) {
	flushConntrack(ctx, e.gw)
	stop, d, err := e.start(ctx, setupPicoseg, path)
	if err != nil {
		return 0, 0, load.FloodResult{}, err
	}
	before, err := d.status()
	var total load.FloodResult
	if err == nil {
		total, err = e.hellos(ctx)
	}
	after, serr := d.status()
	err = errors.Join(err, serr, stop())
	if err != nil {
		return 0, 0, total, err
	}
	if total.TCP == 0 || total.Seconds == 0 {
		return 0, 0, total, fmt.Errorf("no TLS flow completed (%d failed: %v)", total.Failed, total.Errors)
	}
	return float64(total.TCP) / total.Seconds, float64(received(after)-received(before)) / float64(total.TCP), total, nil
}

// hellos runs the ClientHello clients on every device at once.
func (e *env) hellos(ctx context.Context) (load.FloodResult, error) {
	return e.onEveryDevice(ctx, "hellos", "-server", e.wan.Addr.String(), "-duration", e.cfg.FloodTime.String(),
		"-tcp", strconv.Itoa(appHelloWorkers), "-name", "bench.example.com")
}

// appReport adds the application-identity rows.
func (e *env) appReport(r *stats.Report, s *samples) {
	for _, v := range appVariants() {
		r.Add(stats.New("app_tls_flows_per_s_"+v.key, "New TLS flows/s (a ClientHello each), "+v.title, "flows/s", stats.Info, 0, s.appFlows[v.key]))
		r.Add(stats.New("app_userspace_packets_per_tls_flow_"+v.key, "Packets to userspace per TLS flow, "+v.title, "packets", stats.Info, 0, s.appPerFlow[v.key]))
	}
	f := stats.New("app_tls_flows_ratio", `New TLS flows/s under app = "tls" / under the same rule without app`, "", stats.AtLeast, 0.8, s.appRatio)
	f.Note = fmt.Sprintf("%d devices × %d clients, each flow a connection to the sink, one ClientHello, both sides closing; %v per run; the two rules alternate in each round", len(e.devices), appHelloWorkers, e.cfg.FloodTime)
	r.Add(f)
}
