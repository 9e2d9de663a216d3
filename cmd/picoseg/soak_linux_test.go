package main

// The soak test: picoseg under mixed traffic, a random-source SYN flood,
// reloads every 5 s, lost tables and a kill -9, for a bounded time. It runs
// only when PICOSEG_SOAK is set to a duration (`make soak`, SOAK=2m).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// soakEnv holds the soak's duration; unset, the soak is skipped.
const soakEnv = "PICOSEG_SOAK"

// window is a span of time in which an outcome is excused (a denying
// policy, a table gap, a restart).
type window struct{ from, to time.Time }

type windows struct {
	mu   sync.Mutex
	list []window
}

func (w *windows) add(from, to time.Time) {
	w.mu.Lock()
	w.list = append(w.list, window{from, to})
	w.mu.Unlock()
}

// open starts a window that close ends.
func (w *windows) open(from time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, window{from, time.Time{}})
	return len(w.list) - 1
}

func (w *windows) close(i int, to time.Time) {
	w.mu.Lock()
	w.list[i].to = to
	w.mu.Unlock()
}

// near reports whether t lies in a window widened by slack.
func (w *windows) near(t time.Time, slack time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range w.list {
		to := x.to
		if to.IsZero() {
			to = time.Now()
		}
		if !t.Before(x.from.Add(-slack)) && !t.After(to.Add(slack)) {
			return true
		}
	}
	return false
}

// soakFlow is a long-lived flow that echoes every 50 ms and records when it
// is cut (an error, or no echo for 2 s).
type soakFlow struct {
	name string
	cut  chan time.Time
	dead bool // its cut was seen
}

func (f *fixture) soakFlow(name, host string, dst netip.AddrPort) (*soakFlow, error) {
	c, err := f.lab.Host(host).Dial(f.ctx, "tcp", dst.String())
	if err != nil {
		return nil, err
	}
	sf := &soakFlow{name: name, cut: make(chan time.Time, 1)}
	go func() {
		defer c.Close()
		buf := make([]byte, 32)
		for f.ctx.Err() == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write(buf); err != nil {
				break
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		sf.cut <- time.Now()
	}()
	return sf, nil
}

// soakSample is one short flow's outcome.
type soakSample struct {
	at      time.Time
	kind    string
	allowed bool // whether the policy allows it
	passed  bool
}

// TestSoak: see the file comment. Afterwards the policy is still enforced,
// no denied packet reached the LAN host outside a table gap, no legitimate
// established flow was cut except by a reload that denied it, and the
// daemon's memory is flat.
func TestSoak(t *testing.T) {
	env := os.Getenv(soakEnv)
	if env == "" {
		t.Skipf("the soak runs with %s=DURATION (make soak)", soakEnv)
	}
	dur, err := time.ParseDuration(env)
	if err != nil || dur < time.Minute {
		t.Fatalf("%s=%q: want a duration of at least 1m", soakEnv, env)
	}
	f := newFixture(t)
	var cancel func()
	f.ctx, cancel = context.WithTimeout(context.Background(), dur+3*time.Minute)
	defer cancel()
	s := newSoak(t, f, dur)
	s.run()
	s.check()
}

type soak struct {
	t     *testing.T
	f     *fixture
	dur   time.Duration
	start time.Time

	good, deny, broken      string
	denyPlugs               windows // a policy denying plugs-to-cloud is running
	gaps                    windows // no table (nft flush ruleset)
	down                    windows // no daemon (kill -9 until restarted)
	flows                   []*soakFlow
	samples                 []soakSample
	samplesMu               sync.Mutex
	rss                     []int // kB of the running daemon, every 5 s
	tcpdump                 interface{ Stop() error }
	capture                 string // tcpdump's output file
	reloads, reloadFailures int
	flowCuts                []string
}

func newSoak(t *testing.T, f *fixture, dur time.Duration) *soak {
	s := &soak{t: t, f: f, dur: dur}
	s.good = labPolicy(t, func(p string) string {
		return strings.Replace(p, `on_daemon_down = "open"`, `on_daemon_down = "closed"`, 1)
	})
	s.deny = strings.Replace(s.good, `services = ["tcp/8883"]`, `services = ["tcp/8884"]`, 1)
	s.broken = s.good + "\n[[allow]]\nname = \"oops\"\nfrom = \"group:nobody\"\n"
	for _, srv := range []struct {
		host string
		port int
	}{{"wan", 8443}, {"wan", 8883}, {"plug1", 80}, {"plug2", 80}, {"hub", 80}, {"lan", 22}} {
		f.echo(srv.host, srv.port)
	}
	if !f.can("cam", "lan", 22) || !f.can("plug1", "plug2", 80) {
		t.Fatal("lab without picoseg: the denied flows do not pass, so the soak could prove nothing")
	}
	return s
}

// run drives the timeline: flows, flood, reloads every 5 s, two table
// flushes and one kill -9 with a restart.
func (s *soak) run() {
	t, f := s.t, s.f
	f.start(s.good)
	s.start = time.Now()
	var err error
	s.capture = filepath.Join(f.dir, "lan-port22.txt")
	if s.tcpdump, err = f.lab.Host("lan").Start(f.ctx, "sh", "-c", "exec tcpdump -i eth0 -n -l -tt -q 'tcp dst port 22' >"+s.capture+" 2>/dev/null"); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	time.Sleep(time.Second) // tcpdump attaches
	for _, fl := range []struct{ name, host, dst string }{{"cam-upload", "cam", "198.51.100.2:8443"}, {"plug2-cloud", "plug2", "198.51.100.2:8883"}} {
		sf, err := f.soakFlow(fl.name, fl.host, netip.MustParseAddrPort(fl.dst))
		if err != nil {
			t.Fatal(err)
		}
		s.flows = append(s.flows, sf)
	}
	flood, err := f.lab.Host("plug1").Start(f.ctx, "hping3", "-q", "-S", "-p", "22", "--rand-source", "-i", "u1000", "10.88.0.10")
	if err != nil {
		t.Fatalf("hping3: %v", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.shortFlows(done) }()

	end := s.start.Add(s.dur)
	flushes := []time.Time{s.start.Add(s.dur * 3 / 10), s.start.Add(s.dur * 6 / 10)}
	// The kill comes early, so that the daemon started after it runs
	// long enough for its memory to be judged.
	kill := s.start.Add(s.dur * 15 / 100)
	cycle := []string{"broken", "deny", "broken", "good"}
	tick := time.NewTicker(2500 * time.Millisecond)
	defer tick.Stop()
	lastRSS := time.Time{}
	denyWin := -1
	for i, n := 0, 0; time.Now().Before(end); {
		now := <-tick.C
		n++
		if now.Sub(lastRSS) >= 5*time.Second {
			lastRSS = now
			s.rss = append(s.rss, rssKB(f.daemon.PID()))
		}
		switch {
		case len(flushes) > 0 && now.After(flushes[0]):
			flushes = flushes[1:]
			s.flush()
		case !kill.IsZero() && now.After(kill):
			kill = time.Time{}
			s.killAndRestart()
			if denyWin >= 0 {
				s.denyPlugs.close(denyWin, time.Now()) // restarted with the good policy
				denyWin = -1
			}
			s.reopenFlows()
		case n%2 == 0: // a reload every 5 s
			which := cycle[i%len(cycle)]
			i++
			s.reload(which)
			switch which {
			case "deny":
				denyWin = s.denyPlugs.open(time.Now())
			case "good":
				if denyWin >= 0 {
					s.denyPlugs.close(denyWin, time.Now())
					denyWin = -1
				}
				time.Sleep(500 * time.Millisecond)
				s.reopenFlows()
			}
		}
		s.collectCuts()
	}
	flood.Stop()
	close(done)
	wg.Wait()
	if denyWin >= 0 {
		s.reload("good")
		s.denyPlugs.close(denyWin, time.Now())
	}
	time.Sleep(time.Second)
	s.collectCuts()
	s.tcpdump.Stop()
}

func (s *soak) write(policy string) {
	if err := os.WriteFile(s.f.policy, []byte(policy), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// reload sends SIGHUP with the named policy and waits for its outcome: a
// new generation, or one more refused reload for the broken policy.
func (s *soak) reload(which string) {
	before := s.f.status()
	s.write(map[string]string{"good": s.good, "deny": s.deny, "broken": s.broken}[which])
	s.f.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st := s.f.status()
		refused, swapped := st.ReloadFailures > before.ReloadFailures, st.Generation != before.Generation
		if !refused && !swapped {
			continue
		}
		s.reloads++
		if refused {
			s.reloadFailures++
		}
		if refused != (which == "broken") {
			s.t.Errorf("reload of the %s policy: refused = %v", which, refused)
		}
		return
	}
	s.t.Errorf("reload %s: no outcome within 5 s", which)
}

// flush runs `nft flush ruleset` and waits for the daemon to say it has
// installed the table again (listing the table would take a second once
// the flood has filled its guard set).
func (s *soak) flush() {
	before := s.f.status().RulesetRestores
	from := time.Now()
	i := s.gaps.open(from)
	if _, err := s.f.lab.Gateway.Run(s.f.ctx, "nft", "flush", "ruleset"); err != nil {
		s.t.Fatal(err)
	}
	for s.f.status().RulesetRestores == before {
		if time.Since(from) > 5*time.Second {
			s.t.Fatal("the table was not restored within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.gaps.close(i, time.Now())
	s.t.Logf("%v: nft flush ruleset at %s: table back within %v", from.Sub(s.start).Round(time.Second), from.UTC().Format("15:04:05.000"), time.Since(from).Round(time.Millisecond))
}

// killAndRestart kills the daemon with SIGKILL and starts it again.
func (s *soak) killAndRestart() {
	from := time.Now()
	i := s.down.open(from)
	s.f.signal(syscall.SIGKILL)
	<-s.f.daemon.Done()
	s.f.start(s.good)
	s.down.close(i, time.Now())
	s.rss = nil // memory is judged on the daemon that runs to the end

	s.t.Logf("%v: kill -9 and restart took %v", from.Sub(s.start).Round(time.Second), time.Since(from).Round(time.Millisecond))
}

// collectCuts records long-lived flows that were cut. The plugs' flow may
// be cut by a reload that denies it; the camera's never.
func (s *soak) collectCuts() {
	for _, fl := range s.flows {
		if fl.dead {
			continue
		}
		select {
		case at := <-fl.cut:
			fl.dead = true
			excused := fl.name == "plug2-cloud" && s.denyPlugs.near(at, 3*time.Second)
			if !excused && s.f.ctx.Err() == nil {
				s.flowCuts = append(s.flowCuts, fmt.Sprintf("%s cut at %v", fl.name, at.Sub(s.start).Round(time.Millisecond)))
			}
		default:
		}
	}
}

// reopenFlows opens again the long-lived flows that were cut, while the
// policy allows them.
func (s *soak) reopenFlows() {
	s.collectCuts()
	for i, fl := range s.flows {
		if !fl.dead {
			continue
		}
		dst := map[string]string{"cam-upload": "198.51.100.2:8443", "plug2-cloud": "198.51.100.2:8883"}[fl.name]
		host := map[string]string{"cam-upload": "cam", "plug2-cloud": "plug2"}[fl.name]
		nf, err := s.f.soakFlow(fl.name, host, netip.MustParseAddrPort(dst))
		if err != nil {
			s.t.Errorf("reopening %s: %v", fl.name, err)
			continue
		}
		s.flows[i] = nf
	}
}

// shortFlows opens short connections in turn until done: allowed ones and
// denied ones.
func (s *soak) shortFlows(done chan struct{}) {
	kinds := []struct {
		kind, from, to string
		port           uint16
		allowed        bool
	}{
		{"cam->wan:8443", "cam", "wan", 8443, true},
		{"hub->plug1:80", "hub", "plug1", 80, true},
		{"admin->hub:80", "lan", "hub", 80, true},
		{"plug2->wan:8883", "plug2", "wan", 8883, true},
		{"cam->lan:22", "cam", "lan", 22, false},
		{"plug1->plug2:80", "plug1", "plug2", 80, false},
	}
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		case <-time.After(100 * time.Millisecond):
		}
		k := kinds[i%len(kinds)]
		at := time.Now()
		err := s.f.lab.Host(k.from).TCPConnect(s.f.ctx, netip.AddrPortFrom(s.f.lab.Host(k.to).Addr, k.port), 1500*time.Millisecond)
		s.samplesMu.Lock()
		s.samples = append(s.samples, soakSample{at: at, kind: k.kind, allowed: k.allowed, passed: err == nil})
		s.samplesMu.Unlock()
	}
}

// check judges the run and reports its figures.
func (s *soak) check() {
	t, f := s.t, s.f
	// The policy is still enforced.
	if f.can("cam", "lan", 22) || f.can("plug1", "plug2", 80) || !f.can("cam", "wan", 8443) || !f.can("hub", "plug1", 80) {
		t.Error("after the soak, the policy is not enforced as written")
	}
	// Denied packets on the LAN host: excused only in a table gap.
	var leaked, inGap int
	capture, err := os.ReadFile(s.capture)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(capture)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[1] != "IP" {
			continue
		}
		sec, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if s.gaps.near(at, 200*time.Millisecond) {
			inGap++
		} else {
			leaked++ // with no daemon too: on_daemon_down = "closed"
		}
	}
	for _, line := range strings.Split(f.daemon.Output(), "\n") {
		if strings.Contains(line, "installed again") {
			t.Logf("daemon: %s", line)
		}
	}
	t.Logf("denied packets (flood and probes to tcp/22) that reached the LAN host: %d outside table gaps, %d in the gaps (nft flush ruleset leaves no firewall until the table is back)", leaked, inGap)
	if leaked > 0 {
		t.Errorf("%d denied packets reached the LAN host outside a table gap", leaked)
	}
	// Long-lived flows.
	t.Logf("long-lived flows cut, not excused by a denying reload: %v", s.flowCuts)
	if len(s.flowCuts) > 0 {
		t.Errorf("legitimate established flows were cut: %v", s.flowCuts)
	}
	s.checkShortFlows()
	s.checkMemory()
	st := f.status()
	t.Logf("reloads %d (%d refused), table restores %d, flows tracked %d, kernel %v", s.reloads, s.reloadFailures, st.RulesetRestores, st.FlowsTracked, st.Kernel)
}

// checkShortFlows: allowed flows pass, denied ones do not, except in a
// gap (new flows may pass with no table; none pass with no daemon, as
// on_daemon_down = "closed") or while the plugs' cloud is denied.
func (s *soak) checkShortFlows() {
	t := s.t
	type tally struct{ tried, passed, excused int }
	byKind := map[string]*tally{}
	var wrong []string
	for _, x := range s.samples {
		tl := byKind[x.kind]
		if tl == nil {
			tl = &tally{}
			byKind[x.kind] = tl
		}
		tl.tried++
		if x.passed {
			tl.passed++
		}
		allowed := x.allowed && !(x.kind == "plug2->wan:8883" && s.denyPlugs.near(x.at, time.Second))
		if x.passed == allowed {
			continue
		}
		if s.gaps.near(x.at, 2*time.Second) || s.down.near(x.at, 2*time.Second) || (x.kind == "plug2->wan:8883" && s.denyPlugs.near(x.at, 2*time.Second)) {
			tl.excused++
			continue
		}
		wrong = append(wrong, fmt.Sprintf("%s at %v passed=%v", x.kind, x.at.Sub(s.start).Round(time.Millisecond), x.passed))
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		tl := byKind[k]
		t.Logf("short flows %-16s %5d tried, %5d passed, %d off-policy in a gap or at a reload edge", k, tl.tried, tl.passed, tl.excused)
	}
	// Under a flood on two shared cores, an allowed connection may time
	// out now and then; a denied one passing never is.
	var deniedPassed, allowedFailed int
	for _, w := range wrong {
		if strings.Contains(w, "passed=true") {
			deniedPassed++
		} else {
			allowedFailed++
		}
	}
	if deniedPassed > 0 {
		t.Errorf("denied short flows passed: %v", wrong)
	}
	if allowedFailed*100 > len(s.samples) {
		t.Errorf("more than 1%% of allowed short flows failed: %v", wrong)
	} else if allowedFailed > 0 {
		t.Logf("allowed short flows that failed: %v", wrong)
	}
}

// checkMemory: after a warm-up (the flood fills the flow table to its
// bound in about a minute), the RSS of the daemon that ran to the end is
// flat: the median of the later half of the samples is not above the
// earlier half's by more than a quarter and 4 MB.
func (s *soak) checkMemory() {
	t := s.t
	t.Logf("daemon RSS every 5 s since its restart (kB): %v", s.rss)
	const warmup = 15 // samples: 75 s
	if len(s.rss) < warmup+4 {
		t.Logf("too few RSS samples after the warm-up to judge memory (%d)", len(s.rss))
		return
	}
	xs := s.rss[warmup:]
	first, last := median(xs[:len(xs)/2]), median(xs[len(xs)/2:])
	t.Logf("daemon RSS median after warm-up: %d kB in the earlier half, %d kB in the later half (peak %d kB)", first, last, slices.Max(s.rss))
	if last > first*5/4+4096 {
		t.Errorf("daemon memory grew from %d kB to %d kB", first, last)
	}
}

// rssKB is a process's resident set in kB, 0 if unknown.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
