package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/daemon"
	"github.com/picoseg/picoseg/pkg/demo"
)

func runDaemon(args []string, _, stderr io.Writer) int {
	fs, path := newFlags("run", stderr)
	monitor := fs.Bool("monitor", false, "decide and alert, never drop (overrides the policy's mode)")
	socket := fs.String("socket", "", "status socket `path` (default: the policy's [daemon] socket)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	err := daemon.Run(context.Background(), daemon.Options{ConfigPath: *path, Monitor: *monitor, Socket: *socket, Version: version, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("status", stderr)
	socket := fs.String("socket", "", "status socket `path` (default: the policy's [daemon] socket, else "+config.DefaultSocket+")")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sock := *socket
	if sock == "" {
		sock = config.DefaultSocket
		if cfg, _, err := config.Load(*path); err == nil {
			sock = cfg.Daemon.Socket
		}
	}
	s, err := daemon.QueryStatus(sock)
	if err != nil {
		fmt.Fprintln(stderr, "status:", err)
		return 1
	}
	if *asJSON {
		writeJSON(stdout, s)
	} else {
		s.WriteText(stdout)
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
