package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/picoseg/picoseg/internal/demo"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/daemon"
)

func runDaemon(args []string, _, stderr io.Writer) int {
	fs, path := newFlags("run", stderr)
	monitor := fs.Bool("monitor", false, "decide and alert, never drop (overrides the policy's mode)")
	socket := fs.String("socket", "", "status socket `path` (default: the policy's [daemon] socket)")
	state := fs.String("inventory-state", "", "device inventory state `file` (default: the policy's [inventory] state)")
	record := fs.String("learn-record", "", "keep a record of the flows devices open in `file`, for learn --from-daemon (monitor mode)")
	lock := fs.String("lock", "", "lock `file` held while running (default: the policy's [daemon] lock, else "+config.DefaultLock+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if os.Getenv("GOGC") == "" {
		// Most of the heap is the flow table, allocated once and kept: the
		// default GOGC=100 would let garbage grow as large again before
		// collecting, which a 128 MB router cannot spare.
		debug.SetGCPercent(50)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	err := daemon.Run(context.Background(), daemon.Options{ConfigPath: *path, Monitor: *monitor, Socket: *socket,
		InventoryState: *state, LearnRecord: *record, Lock: *lock, Version: version, Logger: log, Signals: sigs})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	view := "status"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		view, args = args[0], args[1:]
	}
	fs, path := newFlags("status", stderr)
	socket := fs.String("socket", "", "status socket `path` (default: the policy's [daemon] socket, else "+config.DefaultSocket+")")
	device := fs.String("device", "", "with flows: only this device's `name`")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	v, err := daemon.ViewNamed(view)
	if err != nil {
		fmt.Fprintln(stderr, "status:", err)
		return 2
	}
	ans, err := v.Fetch(daemon.StatusSocket(*socket, *path), *device)
	if err != nil {
		fmt.Fprintln(stderr, "status:", err)
		return 1
	}
	if *asJSON {
		writeJSON(stdout, ans.Value)
	} else {
		ans.WriteText(stdout)
	}
	return 0
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("demo", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "demo: needs root: it builds network namespaces and an nftables table (try: sudo picoseg demo)")
		return 1
	}
	policy := *path
	if policy == "/etc/picoseg/picoseg.toml" {
		policy = "rules/demo.toml"
	}
	abs, err := filepath.Abs(policy)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	if _, _, ok := loadPolicy(abs, stderr); !ok {
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	rep, err := demo.Run(context.Background(), demo.Options{Policy: abs, Binary: self, Out: stdout})
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	rep.Write(stdout)
	if rep.Failed() > 0 {
		return 1
	}
	return 0
}
