package packagetest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"testing"
)

// target is what a package's binary must have been built for.
type target struct {
	machine elf.Machine
	order   binary.ByteOrder
	class   elf.Class
	goarch  string
	variant string // GOARM or GOMIPS, "" for none
}

// targets maps a package architecture (Debian's or OpenWrt's) to its build.
var targets = map[string]target{
	"amd64":                    {elf.EM_X86_64, binary.LittleEndian, elf.ELFCLASS64, "amd64", ""},
	"arm64":                    {elf.EM_AARCH64, binary.LittleEndian, elf.ELFCLASS64, "arm64", ""},
	"armhf":                    {elf.EM_ARM, binary.LittleEndian, elf.ELFCLASS32, "arm", "6"}, // Pi Zero / Pi 1
	"x86_64":                   {elf.EM_X86_64, binary.LittleEndian, elf.ELFCLASS64, "amd64", ""},
	"aarch64_cortex-a53":       {elf.EM_AARCH64, binary.LittleEndian, elf.ELFCLASS64, "arm64", ""},
	"aarch64_generic":          {elf.EM_AARCH64, binary.LittleEndian, elf.ELFCLASS64, "arm64", ""},
	"arm_cortex-a7_neon-vfpv4": {elf.EM_ARM, binary.LittleEndian, elf.ELFCLASS32, "arm", "7"},
	"mipsel_24kc":              {elf.EM_MIPS, binary.LittleEndian, elf.ELFCLASS32, "mipsle", "softfloat"},
	"mips_24kc":                {elf.EM_MIPS, binary.BigEndian, elf.ELFCLASS32, "mips", "softfloat"},
}

// checkBinary checks that bin is a static, stripped, reproducibly built
// picoseg for arch.
func checkBinary(t *testing.T, arch string, bin []byte) {
	t.Helper()
	want, ok := targets[arch]
	if !ok {
		t.Fatalf("unknown package architecture %q", arch)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("binary: %v", err)
	}
	defer f.Close()
	if f.Machine != want.machine || f.ByteOrder != want.order || f.Class != want.class {
		t.Errorf("binary is %v %v %v, want %v %v %v", f.Machine, f.ByteOrder, f.Class, want.machine, want.order, want.class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary is dynamically linked (has PT_INTERP); want static")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: want it stripped (-s -w)")
	}
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("build info: %v", err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if info.Path != "github.com/picoseg/picoseg/cmd/picoseg" {
		t.Errorf("binary is %s", info.Path)
	}
	checks := map[string]string{"GOOS": "linux", "GOARCH": want.goarch, "CGO_ENABLED": "0", "-trimpath": "true"}
	switch want.goarch {
	case "arm":
		checks["GOARM"] = want.variant
	case "mips", "mipsle":
		checks["GOMIPS"] = want.variant
	}
	// Version-control stamps differ between a clone and a git worktree of
	// the same commit: the version comes from -X main.version instead.
	if v, ok := settings["vcs"]; ok {
		t.Errorf("binary stamped with vcs=%s: want -buildvcs=false (reproducible)", v)
	}
	for k, v := range checks {
		if settings[k] != v {
			t.Errorf("built with %s=%q, want %q", k, settings[k], v)
		}
	}
	// -buildid= leaves the Go build ID note out: a build ID hashes the
	// build's inputs as the toolchain saw them, paths included.
	if s := f.Section(".note.go.buildid"); s != nil {
		if note, err := s.Data(); err != nil || len(bytes.TrimRight(note, "\x00")) > 16 {
			t.Errorf("binary has a Go build ID note %q: want it built with -buildid=", note)
		}
	}
}
