package packagetest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the directory holding go.mod, found from the test's working
// directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// source reads a file of the repository.
func source(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// built lists dist/*.EXT, or skips the test when there are none.
func built(t *testing.T, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "dist", "*."+ext))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no dist/*.%s: run make package (or make package-test)", ext)
	}
	sort.Strings(files)
	return files
}

// nameParts splits dist/picoseg_VERSION_ARCH.EXT.
func nameParts(t *testing.T, path string) (version, arch string) {
	t.Helper()
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	parts := strings.SplitN(base, "_", 3)
	if len(parts) != 3 || parts[0] != "picoseg" {
		t.Fatalf("%s: want picoseg_VERSION_ARCH", filepath.Base(path))
	}
	return parts[1], parts[2]
}

// versionTime is the commit time encoded in a snapshot version
// (0.0.0~gitYYYYMMDDhhmmss.HASH), or false for a release version.
func versionTime(version string) (time.Time, bool) {
	_, rest, ok := strings.Cut(version, "~git")
	if !ok || len(rest) < 14 {
		return time.Time{}, false
	}
	ts, err := time.Parse("20060102150405", rest[:14])
	return ts, err == nil
}

// entry is one member of an archive.
type entry struct {
	Name         string
	Mode         int64
	Uid, Gid     int
	Uname, Gname string
	Type         byte
	ModTime      time.Time
	Data         []byte
}

// readAr reads a Debian ar archive (the common format, no long names).
func readAr(b []byte) ([]entry, error) {
	const magic = "!<arch>\n"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, errors.New("not an ar archive")
	}
	var out []entry
	for off := len(magic); off < len(b); {
		if off+60 > len(b) {
			return nil, errors.New("truncated ar header")
		}
		h := b[off : off+60]
		if string(h[58:60]) != "`\n" {
			return nil, fmt.Errorf("bad ar header at %d", off)
		}
		field := func(lo, hi int) string { return strings.TrimSpace(string(h[lo:hi])) }
		size, err := strconv.Atoi(field(48, 58))
		if err != nil || size < 0 || off+60+size > len(b) {
			return nil, fmt.Errorf("bad ar member size at %d", off)
		}
		mtime, _ := strconv.ParseInt(field(16, 28), 10, 64)
		uid, _ := strconv.Atoi(field(28, 34))
		gid, _ := strconv.Atoi(field(34, 40))
		mode, _ := strconv.ParseInt(field(40, 48), 8, 64)
		out = append(out, entry{Name: strings.TrimSuffix(field(0, 16), "/"), Mode: mode, Uid: uid, Gid: gid,
			ModTime: time.Unix(mtime, 0).UTC(), Data: b[off+60 : off+60+size]})
		off += 60 + size + size%2
	}
	return out, nil
}

// readTarGz reads a gzip-compressed tar archive whole.
func readTarGz(b []byte) ([]entry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, entry{Name: h.Name, Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, Uname: h.Uname,
			Gname: h.Gname, Type: h.Typeflag, ModTime: h.ModTime.UTC(), Data: data})
	}
}

// member returns the archive member with the given name.
func member(t *testing.T, entries []entry, name string) entry {
	t.Helper()
	for _, e := range entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no %s in the archive", name)
	return entry{}
}

// controlFields parses a Debian-style control file; continuation lines
// are joined to their field with a newline.
func controlFields(t *testing.T, b []byte) map[string]string {
	t.Helper()
	fields := map[string]string{}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				t.Fatalf("control: continuation line first: %q", line)
			}
			fields[last] += "\n" + line
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("control: not a field: %q", line)
		}
		if _, dup := fields[k]; dup {
			t.Fatalf("control: field %s twice", k)
		}
		last = k
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

// list splits a Depends-style field.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// fileSpec is what a packaged file must be.
type fileSpec struct {
	mode   int64
	source string // the repository file it is a copy of; "" for the binary
}

// checkData checks a data archive: exactly the files of want, each with
// its mode, owned by root, a copy of its source; every directory 0755 and
// root's; no other kind of entry. It returns the binary's bytes.
func checkData(t *testing.T, entries []entry, want map[string]fileSpec, binary string) []byte {
	t.Helper()
	seen := map[string]bool{}
	var bin []byte
	for _, e := range entries {
		if e.Uid != 0 || e.Gid != 0 || (e.Uname != "" && e.Uname != "root") || (e.Gname != "" && e.Gname != "root") {
			t.Errorf("%s: owner %d:%d (%s:%s), want root", e.Name, e.Uid, e.Gid, e.Uname, e.Gname)
		}
		switch e.Type {
		case tar.TypeDir:
			if e.Mode != 0o755 {
				t.Errorf("%s: directory mode %o, want 755", e.Name, e.Mode)
			}
			continue
		case tar.TypeReg:
		default:
			t.Errorf("%s: unexpected entry type %q", e.Name, e.Type)
			continue
		}
		spec, ok := want[e.Name]
		if !ok {
			t.Errorf("unexpected file %s", e.Name)
			continue
		}
		seen[e.Name] = true
		if e.Mode != spec.mode {
			t.Errorf("%s: mode %o, want %o", e.Name, e.Mode, spec.mode)
		}
		if spec.source == "" { // built, not copied: checked on its own
			if e.Name == binary {
				bin = e.Data
			}
			continue
		}
		if !bytes.Equal(e.Data, source(t, spec.source)) {
			t.Errorf("%s differs from %s", e.Name, spec.source)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("missing %s", name)
		}
	}
	if bin == nil {
		t.Fatalf("no binary %s", binary)
	}
	return bin
}

// checkTimes checks that every entry carries the one build time.
func checkTimes(t *testing.T, what string, entries []entry, want time.Time) {
	t.Helper()
	for _, e := range entries {
		if !e.ModTime.Equal(want) {
			t.Errorf("%s: %s has time %s, want the commit's %s", what, e.Name, e.ModTime, want)
			return
		}
	}
}
