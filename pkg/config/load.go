package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
)

// Load reads the policy file at path and the files it includes, and
// validates the whole.
//
// When the policy has any problem, Load returns a nil Config and an
// ErrorList holding every problem found, sorted by file, line and column.
// The warnings are returned either way. An unreadable main file gives the
// plain *fs.PathError instead, since there is no position to report.
func Load(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return Parse(path, data)
}

// Parse is Load for a main file already in memory. name is used in
// positions, and the include patterns are resolved on disk relative to
// filepath.Dir(name).
func Parse(name string, data []byte) (*Config, []Warning, error) {
	return files{readFile: os.ReadFile, glob: filepath.Glob}.parse(name, data)
}

// files is where included files come from: the disk for Load and Parse, an
// in-memory tree for the fuzz test.
type files struct {
	readFile func(name string) ([]byte, error)
	glob     func(pattern string) ([]string, error)
}

// builder accumulates a Config, where its names were written and every
// problem found, across the main file and its includes.
type builder struct {
	cfg  Config
	src  sources
	diag diagnostics
}

func (f files) parse(name string, data []byte) (*Config, []Warning, error) {
	b := &builder{cfg: Config{Files: []string{name}, Daemon: defaultDaemon(name), Alert: defaultAlert(),
		Inventory: Inventory{State: DefaultInventoryState}}}
	if root, ok := b.open(name, data); ok {
		root.checkKeys(topLevelKeys()...)
		if t, ok := root.table("daemon"); ok {
			b.daemon(t)
		}
		if t, ok := root.table("alert"); ok {
			b.alert(t)
		}
		if t, ok := root.table("inventory"); ok {
			b.inventory(t)
		}
		if t, ok := root.table("metrics"); ok {
			b.metrics(t)
		}
		if t, ok := root.table("gateway"); ok {
			b.gateway(t)
		}
		if t, ok := root.table("spa"); ok {
			b.spaTable(t)
		}
		b.dns(root)
		includes := b.includes(root, f, name)
		b.sections(root)
		for _, inc := range includes {
			b.cfg.Files = append(b.cfg.Files, inc.file)
			data, err := f.readFile(inc.file)
			if err != nil {
				b.diag.errorf(inc.pos, "include %q: %v", inc.pattern, err)
				continue
			}
			if t, ok := b.open(inc.file, data); ok {
				b.included(t)
			}
		}
		b.check()
	}
	warns, err := b.diag.result()
	if err != nil {
		return nil, warns, err
	}
	return &b.cfg, warns, nil
}

// open reads one file, in one pass, into its tree of values that know
// where they and their keys are written. A syntax error is reported and
// ends the file: what follows it cannot be trusted.
func (b *builder) open(name string, data []byte) (table, bool) {
	// The TOML library counts its offsets after one byte order mark; so do
	// we, so that positions from either count from the same byte.
	src := stripBOM(string(data))
	root, rerr := readTOML(src)
	if rerr != nil {
		b.syntaxError(name, data, src, rerr)
		return table{}, false
	}
	return table{doc: &document{file: name, diag: &b.diag}, n: root}, true
}

// syntaxError reports why a file is not a TOML document. The TOML library
// is asked for its wording and position, which users and tests know; the
// reader's own message is shown only where the library accepts the text,
// that is where the reader is stricter (a key defined twice).
func (b *builder) syntaxError(name string, data []byte, src string, rerr *readError) {
	var root map[string]any
	_, err := toml.Decode(string(data), &root)
	var perr toml.ParseError
	switch {
	case errors.As(err, &perr):
		b.diag.errorf(syntaxErrorPos(name, src, perr.Position), "syntax error: %s", printable(perr.Message))
	case err != nil:
		b.diag.errorf(Pos{File: name, Line: 1, Col: 1}, "%v", err)
	default:
		b.diag.errorf(Pos{File: name, Line: int(rerr.at.line), Col: int(rerr.at.col)}, "syntax error: %s", printable(rerr.msg))
	}
}

// stripBOM drops one byte order mark the way the TOML library does before it
// counts offsets, so that its positions and ours count from the same byte.
func stripBOM(src string) string {
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if s, ok := strings.CutPrefix(src, bom); ok {
			return s
		}
	}
	return src
}

// syntaxErrorPos turns the TOML library's error position into ours. Line
// and column are counted again from the byte offset, because the library's
// own column is wrong when the error sits at the very start of a line.
func syntaxErrorPos(name, src string, p toml.Position) Pos {
	start := min(max(p.Start, 0), len(src))
	lineStart := strings.LastIndexByte(src[:start], '\n') + 1
	return Pos{File: name, Line: strings.Count(src[:start], "\n") + 1, Col: start - lineStart + 1}
}

// printable escapes control characters, which the TOML library quotes raw
// from the input (a NUL for the end of file), so that a message stays one
// readable line in a log or a terminal.
func printable(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		if unicode.IsControl(r) {
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// include is one file named by the main file's include patterns.
type include struct {
	file    string
	pattern string // as written, for messages
	pos     Pos    // of the pattern
}

// includes expands the main file's include patterns, each relative to the
// main file's directory and sorted, into the files to load. A file matched
// twice is loaded once, and the main file never includes itself, so that
// include = ["*.toml"] beside it does what it says.
func (b *builder) includes(root table, f files, main string) []include {
	patterns, _ := root.strings("include")
	dir := filepath.Dir(main)
	seen := map[string]bool{filepath.Clean(main): true}
	var list []include
	for _, p := range patterns {
		if p.s == "" {
			b.diag.errorf(p.pos, "include pattern is empty")
			continue
		}
		pattern := p.s
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		matches, err := f.glob(pattern)
		if err != nil {
			b.diag.errorf(p.pos, "bad include pattern %q: %v", p.s, err)
			continue
		}
		// A pattern without wildcards names one file: its absence is a
		// mistake, not an empty directory of optional rules.
		if len(matches) == 0 && !strings.ContainsAny(p.s, `*?[\`) {
			b.diag.errorf(p.pos, "include %q: no such file", p.s)
		}
		slices.Sort(matches)
		for _, m := range matches {
			if seen[filepath.Clean(m)] {
				continue
			}
			seen[filepath.Clean(m)] = true
			list = append(list, include{file: m, pattern: p.s, pos: p.pos})
		}
	}
	return list
}

// topLevelKeys lists the keys a main file may hold. Included files hold the
// named parts of a policy, never the daemon settings or further includes,
// so that what the daemon does is read in one place and includes cannot
// loop.
func topLevelKeys() []string {
	return []string{"include", "daemon", "alert", "inventory", "metrics", "gateway", "dns", "zone", "segment", "group", "device", "allow", "spa", "spa_key"}
}

// included checks the top level of an included file and reads its parts.
func (b *builder) included(root table) {
	root.checkKeys(topLevelKeys()...)
	if root.has("include") {
		root.errorf(root.keyPos("include"), "include is only allowed in the main file")
	}
	for _, k := range []string{"daemon", "alert", "inventory", "metrics", "gateway", "spa", "dns"} {
		if root.has(k) {
			root.errorf(root.keyPos(k), "[%s] is only allowed in the main file", k)
		}
	}
	b.sections(root)
}

// sections reads the named parts of a policy, in file order.
func (b *builder) sections(root table) {
	for _, t := range root.tables("zone") {
		b.zone(t)
	}
	for _, t := range root.tables("segment") {
		b.segment(t)
	}
	for _, t := range root.tables("group") {
		b.group(t)
	}
	// A large policy is mostly devices and rules: room for all of them at
	// once spares copying the lists over and over as they grow.
	devices := root.tables("device")
	b.cfg.Devices = slices.Grow(b.cfg.Devices, len(devices))
	b.src.deviceName = slices.Grow(b.src.deviceName, len(devices))
	b.src.devMAC = slices.Grow(b.src.devMAC, len(devices))
	b.src.devIPs = slices.Grow(b.src.devIPs, len(devices))
	b.src.devGroups = slices.Grow(b.src.devGroups, len(devices))
	for _, t := range devices {
		b.device(t)
	}
	for _, t := range root.tables("spa_key") {
		b.spaKey(t)
	}
	allows := root.tables("allow")
	b.cfg.Allows = slices.Grow(b.cfg.Allows, len(allows))
	b.src.allowName = slices.Grow(b.src.allowName, len(allows))
	for _, t := range allows {
		b.allow(t)
	}
}
