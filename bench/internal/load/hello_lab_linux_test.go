//go:build linux

package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
)

// roleEnv makes the test binary, started inside a lab namespace, play one
// side of the hello flows instead of running the tests.
const roleEnv = "PICOSEG_LOAD_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "serve":
		fmt.Println(Serve())
		os.Exit(1)
	case "dial":
		// Hello flows on ports connect picks, as the clients had them.
		server := netip.MustParseAddr(os.Args[len(os.Args)-1])
		var errs []string
		for i := 0; i < 6; i++ {
			c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(server, PortSink).String(), time.Second)
			if err == nil {
				_, err = c.Write(ClientHello("bench.example.com"))
				c.(*net.TCPConn).CloseWrite()
				if _, rerr := c.Read(make([]byte, 1)); err == nil && rerr != io.EOF {
					err = rerr
				}
				c.Close()
			}
			if err == nil {
				errs = append(errs, "ok")
				continue
			}
			errs = append(errs, errKind(err))
		}
		fmt.Println(strings.Join(errs, ","))
		os.Exit(0)
	case "hellos":
		r, err := Hellos(netip.MustParseAddr(os.Args[len(os.Args)-1]), "bench.example.com", 4, 300*time.Millisecond)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A device with few ephemeral ports, all in TIME_WAIT after as many hello
// flows, can open no more on ports connect picks (the control); the hello
// clients, binding their own ports, still open many more than it has, none
// failing. Their flows end in TIME_WAIT on the client, so a client on
// connect's ports runs out of them (or, with thousands, scans them on every
// flow) from one benchmark run to the next.
func TestHellosOutliveTimeWait(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := lab.DefaultOptions()
	opts.IPv6 = false
	l, err := lab.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wan, dev := l.Host("wan"), l.Host("cam")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := roleEnv + "="
	srv, err := wan.Start(ctx, "env", env+"serve", self)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	waitListening(ctx, t, dev, wan.Addr)
	if err := dev.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40003"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}

	out0, err := dev.Run(ctx, "env", env+"dial", self, wan.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out0), "ok,ok,ok,ok,"+syscall.EADDRNOTAVAIL.Error(); !strings.HasPrefix(got, want) {
		t.Fatalf("control: flows on connect's 4 ports = %q, want 4 done then %q: the lab does not show the ports running out", got, want)
	}

	out, err := dev.Run(ctx, "env", env+"hellos", self, wan.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var r FloodResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("control: %s; hello clients: %d flows, %d failed", strings.TrimSpace(out0), r.TCP, r.Failed)
	if r.Failed != 0 || r.TCP <= 4 {
		t.Errorf("hello clients: %d flows done, %d failed (%v); want more than the device's 4 ephemeral ports, none failed", r.TCP, r.Failed, r.Errors)
	}
}

// waitListening waits until the sink on server accepts a connection from h.
func waitListening(ctx context.Context, t *testing.T, h *lab.Host, server netip.Addr) {
	t.Helper()
	for {
		err := h.Do(func() error {
			c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(server, PortSink).String(), 200*time.Millisecond)
			if err == nil {
				// A reset, no TIME_WAIT: the test's port budget stays whole.
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			return err
		})
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
