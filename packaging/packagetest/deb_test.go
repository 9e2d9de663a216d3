package packagetest

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"debug/buildinfo"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// debFiles is every file the .deb installs.
var debFiles = map[string]fileSpec{
	"./usr/sbin/picoseg":                       {0o755, ""},
	"./etc/picoseg/picoseg.toml":               {0o644, "packaging/debian/picoseg.toml"},
	"./usr/lib/systemd/system/picoseg.service": {0o644, "packaging/debian/picoseg.service"},
	"./usr/lib/modules-load.d/picoseg.conf":    {0o644, "packaging/debian/modules-load.conf"},
	"./usr/lib/sysctl.d/50-picoseg.conf":       {0o644, "packaging/debian/sysctl.conf"},
	"./usr/share/doc/picoseg/README.Debian":    {0o644, "packaging/debian/README.Debian"},
	"./usr/share/doc/picoseg/copyright":        {0o644, "packaging/debian/copyright"},
	"./usr/share/doc/picoseg/changelog.gz":     {0o644, ""}, // made by build.sh
	"./usr/share/lintian/overrides/picoseg":    {0o644, "packaging/debian/lintian-overrides"},
}

// debScripts are the maintainer scripts, from packaging/debian.
var debScripts = []string{"postinst", "prerm", "postrm"}

func TestDeb(t *testing.T) {
	debs := built(t, "deb")
	arches := map[string]bool{}
	for _, path := range debs {
		version, arch := nameParts(t, path)
		arches[arch] = true
		t.Run(arch, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes", filepath.Base(path), len(raw))
			ar, err := readAr(raw)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range ar {
				names = append(names, m.Name)
			}
			if diff := cmp.Diff([]string{"debian-binary", "control.tar.gz", "data.tar.gz"}, names); diff != "" {
				t.Fatalf("ar members (-want +got):\n%s", diff)
			}
			if got := string(ar[0].Data); got != "2.0\n" {
				t.Errorf("debian-binary %q", got)
			}
			control, err := readTarGz(ar[1].Data)
			if err != nil {
				t.Fatal(err)
			}
			data, err := readTarGz(ar[2].Data)
			if err != nil {
				t.Fatal(err)
			}
			checkDebControl(t, control, data, version, arch)
			bin := checkData(t, data, debFiles, "./usr/sbin/picoseg")
			checkBinary(t, arch, bin)
			checkChangelog(t, member(t, data, "./usr/share/doc/picoseg/changelog.gz").Data, version)
			checkCopyright(t, bin, member(t, data, "./usr/share/doc/picoseg/copyright").Data)
			if ts, ok := versionTime(version); ok {
				checkTimes(t, "ar", ar, ts)
				checkTimes(t, "control.tar.gz", control, ts)
				checkTimes(t, "data.tar.gz", data, ts)
			}
			if arch == "amd64" {
				checkShippedPolicy(t, bin, member(t, data, "./etc/picoseg/picoseg.toml").Data, version)
			}
		})
	}
	for _, a := range []string{"amd64", "arm64", "armhf"} {
		if !arches[a] {
			t.Errorf("no .deb for %s", a)
		}
	}
}

// checkDebControl checks the control archive: fields, Depends, conffiles,
// md5sums of every file, and the maintainer scripts.
func checkDebControl(t *testing.T, control, data []entry, version, arch string) {
	t.Helper()
	f := controlFields(t, member(t, control, "./control").Data)
	for k, want := range map[string]string{"Package": "picoseg", "Version": version, "Architecture": arch,
		"Section": "net", "Priority": "optional"} {
		if f[k] != want {
			t.Errorf("control %s: %q, want %q", k, f[k], want)
		}
	}
	for _, k := range []string{"Maintainer", "Description", "Installed-Size", "Homepage"} {
		if f[k] == "" {
			t.Errorf("control: no %s", k)
		}
	}
	// adduser: postinst creates the user with it; procps: the unit's
	// ExecReload runs kill. The binary is static: nothing else.
	if diff := cmp.Diff([]string{"adduser", "procps"}, list(f["Depends"])); diff != "" {
		t.Errorf("Depends (-want +got):\n%s", diff)
	}
	if got := string(member(t, control, "./conffiles").Data); got != "/etc/picoseg/picoseg.toml\n" {
		t.Errorf("conffiles %q", got)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(member(t, control, "./md5sums").Data)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("md5sums line %q", line)
		}
		sums["./"+name] = sum
	}
	for _, e := range data {
		if e.Type == '0' {
			got := md5.Sum(e.Data)
			if sums[e.Name] != hex.EncodeToString(got[:]) {
				t.Errorf("md5sums: %s is %q, want %x", e.Name, sums[e.Name], got)
			}
			delete(sums, e.Name)
		}
	}
	if len(sums) != 0 {
		t.Errorf("md5sums lists files the package does not have: %v", sums)
	}
	for _, s := range debScripts {
		e := member(t, control, "./"+s)
		if e.Mode != 0o755 {
			t.Errorf("%s: mode %o, want 755", s, e.Mode)
		}
		if !bytes.Equal(e.Data, source(t, "packaging/debian/"+s)) {
			t.Errorf("%s differs from packaging/debian/%s", s, s)
		}
		shellSyntax(t, s, e.Data)
	}
}

// checkShippedPolicy runs the packaged binary (amd64, this machine's) on
// the packaged starter policy: it must pass check, in monitor mode, and
// the binary must say the package's version.
func checkShippedPolicy(t *testing.T, bin, policy []byte, version string) {
	t.Helper()
	dir := t.TempDir()
	exe, conf := filepath.Join(dir, "picoseg"), filepath.Join(dir, "picoseg.toml")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, policy, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "check", "-c", conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mode monitor") {
		t.Errorf("packaged picoseg check of the packaged policy: %v\n%s", err, out)
	}
	out, err = exec.Command(exe, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "picoseg "+version {
		t.Errorf("picoseg version: %q (%v), want %q", out, err, "picoseg "+version)
	}
}

// shellSyntax runs sh -n on a script.
func shellSyntax(t *testing.T, name string, script []byte) {
	t.Helper()
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", name, err, out)
	}
}

// checkChangelog checks the generated changelog: its one entry is this
// package's version.
func checkChangelog(t *testing.T, gz []byte, version string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("changelog.gz: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("changelog.gz: %v", err)
	}
	if !strings.HasPrefix(string(b), "picoseg ("+version+") ") || !strings.Contains(string(b), "\n -- ") {
		t.Errorf("changelog does not start with this version's entry:\n%s", b)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() {
		t.Errorf("changelog.gz records a name %q or time %v: want gzip -n", zr.Header.Name, zr.Header.ModTime)
	}
}

// checkCopyright checks that the copyright file names every Go module
// linked into the binary: a new dependency needs its license named there.
func checkCopyright(t *testing.T, bin, copyright []byte) {
	t.Helper()
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range info.Deps {
		if !bytes.Contains(copyright, []byte(dep.Path+" ")) && !bytes.Contains(copyright, []byte(dep.Path+",")) &&
			!bytes.Contains(copyright, []byte(dep.Path+"\n")) {
			t.Errorf("copyright does not name the linked module %s", dep.Path)
		}
	}
}

// TestLintian runs Debian's package checker on this machine's .deb: no
// errors; its warnings are logged.
func TestLintian(t *testing.T) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Skip("lintian not installed (Debian: lintian)")
	}
	for _, path := range built(t, "deb") {
		if _, arch := nameParts(t, path); arch != "amd64" {
			continue
		}
		out, err := exec.Command("lintian", "--fail-on", "error", "--tag-display-limit", "0", path).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.Contains(line, "running with root privileges") {
				t.Log(line)
			}
		}
		if err != nil {
			t.Errorf("lintian %s: %v", filepath.Base(path), err)
		}
	}
}
