package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/daemon"
)

// Options configures Run.
type Options struct {
	// Policy is the policy file the daemon runs with (rules/demo.toml).
	Policy string
	// Binary is the picoseg executable to run in the gateway.
	Binary string
	// Out receives the report.
	Out io.Writer
}

// Outcome is one scenario step.
type Outcome struct {
	Name     string
	Expected string // "passes" or "blocked"
	Observed string
	Detail   string
}

// OK reports whether the step did what was expected.
func (o Outcome) OK() bool { return o.Expected == o.Observed }

// Report is what a demo run saw.
type Report struct {
	Outcomes []Outcome
	Status   daemon.Status
	// Alerts are the alerts the daemon raised, as `picoseg status alerts`
	// shows them.
	Alerts []alert.Alert
	// UploadUserspacePackets is how many packets of the large upload
	// reached userspace (the rest stayed on the kernel's fast path).
	UploadUserspacePackets uint64
	UploadBitsPerSecond    float64
}

// Failed counts the steps that did not do what was expected.
func (r *Report) Failed() int {
	n := 0
	for _, o := range r.Outcomes {
		if !o.OK() {
			n++
		}
	}
	return n
}

const connectTimeout = 2 * time.Second

// Run builds the lab, plays the scenario and tears the lab down.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := lab.Available(); err != nil {
		return nil, err
	}
	if _, err := lab.Cleanup(ctx); err != nil {
		return nil, fmt.Errorf("removing labs left by a crashed run: %w", err)
	}
	lopts := lab.DefaultOptions()
	lopts.IPv6 = false
	fmt.Fprintln(opts.Out, "building the lab: a gateway with wan0, lan0 and the bridge br-iot (cam, plug1, plug2, hub)...")
	l, err := lab.New(ctx, lopts)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	stop := l.CloseOnSignal(ctx)
	defer stop()

	dir, err := os.MkdirTemp("", "picoseg-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "picoseg.sock")

	if err := startServers(ctx, l); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Out, "starting picoseg in the gateway with %s...\n", opts.Policy)
	d, err := l.Gateway.Start(ctx, opts.Binary, "run", "-c", opts.Policy, "--socket", sock,
		"--inventory-state", filepath.Join(dir, "devices.json"))
	if err != nil {
		return nil, err
	}
	if err := waitForDaemon(ctx, sock, d); err != nil {
		return nil, err
	}
	rep, err := play(ctx, l, sock)
	if err != nil {
		return nil, err
	}
	if err := d.Stop(); err != nil && !strings.Contains(err.Error(), "signal") {
		fmt.Fprintf(opts.Out, "daemon: %v\n", err)
	}
	return rep, nil
}

// startServers starts what the scenario's devices connect to.
func startServers(ctx context.Context, l *lab.Lab) error {
	for _, s := range []struct {
		host string
		port int
	}{{"lan", 22}, {"plug2", 80}, {"hub", 80}, {"wan", 8883}} {
		if _, err := l.Host(s.host).ServeTCP(ctx, s.port); err != nil {
			return err
		}
	}
	_, err := l.Host("wan").StartIperf3Server(ctx, 8443)
	return err
}

// play runs the scenario against the daemon answering on sock: each step
// tries a connection and records whether it passed.
func play(ctx context.Context, l *lab.Lab, sock string) (*Report, error) {
	wan, lanHost, cam, plug1, plug2, hub := l.Host("wan"), l.Host("lan"), l.Host("cam"), l.Host("plug1"), l.Host("plug2"), l.Host("hub")
	rep := &Report{}
	step := func(name, expected string, try func() error) {
		o := Outcome{Name: name, Expected: expected, Observed: "passes"}
		if err := try(); err != nil {
			o.Observed = "blocked"
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				o.Detail = err.Error()
			}
		}
		rep.Outcomes = append(rep.Outcomes, o)
	}
	connect := func(from *lab.Host, to *lab.Host, port uint16) func() error {
		return func() error { return from.TCPConnect(ctx, netip.AddrPortFrom(to.Addr, port), connectTimeout) }
	}
	step("camera uploads to its cloud (wan tcp/8443)", "passes", connect(cam, wan, 8443))
	step("camera tries the admin PC (lan tcp/22)", "blocked", connect(cam, lanHost, 22))
	step("plug1 talks to plug2 on the same bridge", "blocked", connect(plug1, plug2, 80))
	step("hub drives plug2 (tcp/80)", "passes", connect(hub, plug2, 80))
	step("plug1 reaches its broker (wan tcp/8883)", "passes", connect(plug1, wan, 8883))
	step("admin PC reaches the hub (tcp/80)", "passes", connect(lanHost, hub, 80))
	step("admin PC pings the hub", "passes", func() error { return lanHost.Ping(ctx, hub.Addr, 1) })
	step("the internet tries the camera (wan to iot)", "blocked", connect(wan, cam, 8443))

	before, err := daemon.QueryStatus(sock)
	if err != nil {
		return nil, err
	}
	var upload error
	step("camera uploads 50 MB to its cloud", "passes", func() error {
		res, err := cam.Iperf3(ctx, netip.AddrPortFrom(wan.Addr, 8443), 0, "-n", "50M")
		rep.UploadBitsPerSecond = res.BitsPerSecond
		upload = err
		return err
	})
	after, err := daemon.QueryStatus(sock)
	if err != nil {
		return nil, err
	}
	if upload == nil {
		rep.UploadUserspacePackets = received(after) - received(before)
	}
	rep.Status = after
	if err := daemon.Query(sock, "alerts", &rep.Alerts); err != nil {
		return nil, err
	}
	return rep, nil
}

func received(s daemon.Status) uint64 {
	var n uint64
	for _, q := range s.Queues {
		n += q.Received
	}
	return n
}

// waitForDaemon waits until the daemon answers on its socket, or died.
func waitForDaemon(ctx context.Context, sock string, d *lab.Process) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := daemon.QueryStatus(sock); err == nil {
			return nil
		}
		select {
		case <-d.Done():
			return fmt.Errorf("picoseg exited at start:\n%s", d.Output())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("picoseg did not answer on %s within 15 s:\n%s", sock, d.Output())
}

// Write prints the report as a table with the daemon's counters.
func (r *Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSCENARIO\tEXPECTED\tOBSERVED\t")
	for _, o := range r.Outcomes {
		mark := "ok"
		if !o.OK() {
			mark = "MISMATCH"
			if o.Detail != "" {
				mark += ": " + o.Detail
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Name, o.Expected, o.Observed, mark)
	}
	tw.Flush()
	if r.UploadBitsPerSecond > 0 {
		fmt.Fprintf(w, "\nthe 50 MB upload ran at %.2f Gbit/s; %d of its packets reached userspace (the rest stayed on the kernel fast path)\n",
			r.UploadBitsPerSecond/1e9, r.UploadUserspacePackets)
	}
	fmt.Fprintln(w, "\nalerts (picoseg status alerts):")
	daemon.WriteAlerts(w, r.Alerts)
	fmt.Fprintln(w, "\ndaemon counters (picoseg status):")
	r.Status.WriteText(w)
	if n := r.Failed(); n > 0 {
		fmt.Fprintf(w, "\n%d of %d steps did not behave as expected\n", n, len(r.Outcomes))
	} else {
		fmt.Fprintf(w, "\nall %d steps behaved as expected\n", len(r.Outcomes))
	}
}
