package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeTree writes files (relative path → content) under a fresh temporary
// directory and returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestIncludesLoadInSortedOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"picoseg.toml": `include = ["rules.d/*.toml", "extra.toml", "*.toml"]
[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]
`,
		"rules.d/20-allow.toml": `[[allow]]
name = "cam-out"
from = "device:cam"
to = "any"
`,
		"rules.d/10-devices.toml": `[[group]]
name = "cameras"
[[device]]
name = "cam"
ip = ["10.77.0.11"]
mac = "02:00:00:00:00:11"
groups = ["cameras"]
`,
		"extra.toml": "[[group]]\nname = \"plugs\"\n",
		"notes.txt":  "not a policy",
	})
	main := filepath.Join(dir, "picoseg.toml")
	cfg, warns, err := Load(main)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %v", warns)
	}
	// extra.toml is matched by two patterns and loaded once; picoseg.toml
	// matches "*.toml" but never includes itself.
	wantFiles := []string{
		main,
		filepath.Join(dir, "rules.d", "10-devices.toml"),
		filepath.Join(dir, "rules.d", "20-allow.toml"),
		filepath.Join(dir, "extra.toml"),
	}
	if diff := cmp.Diff(wantFiles, cfg.Files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
	if got, want := cfg.Devices[0].Pos, (Pos{File: wantFiles[1], Line: 3, Col: 1}); got != want {
		t.Errorf("device position = %v, want %v", got, want)
	}
	if got, want := cfg.Allows[0].From.Pos, (Pos{File: wantFiles[2], Line: 3, Col: 8}); got != want {
		t.Errorf("endpoint position = %v, want %v", got, want)
	}
	var groups []string
	for _, g := range cfg.Groups {
		groups = append(groups, g.Name)
	}
	if diff := cmp.Diff([]string{"cameras", "plugs"}, groups); diff != "" {
		t.Errorf("groups in load order (-want +got):\n%s", diff)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// want holds error lines with DIR standing for the temporary
		// directory.
		want []string
	}{
		{
			name: "an error inside an included file names that file",
			files: map[string]string{
				"main.toml":     "include = [\"inc/*.toml\"]\n[[zone]]\nname = \"iot\"\n",
				"inc/a.toml":    "[[device]]\nname = \"cam\"\nip = [\"10.77.0.1\"]\ngroups = [\"camras\"]\n",
				"inc/b.toml":    "[[zone]]\nname = \"iot\"\n",
				"inc/c.toml":    "[[allow]\nname = \"x\"\n",
				"inc/d.toml":    "[[segment]]\nfrom = \"iot\"\nto = \"lan\"\naction = \"micro\"\n",
				"inc/e.toml":    "include = [\"more.toml\"]\n[daemon]\nmode = \"monitor\"\n",
				"inc/more.toml": "",
			},
			want: []string{
				`DIR/inc/a.toml:4:11: unknown group "camras"`,
				`DIR/inc/b.toml:2:8: duplicate zone "iot", first defined at DIR/main.toml:3:8`,
				`DIR/inc/c.toml:1:8: syntax error: expected end of table array name delimiter ']', but got '\n' instead`,
				`DIR/inc/d.toml:3:6: unknown zone "lan"`,
				`DIR/inc/e.toml:1:1: include is only allowed in the main file`,
				`DIR/inc/e.toml:2:2: [daemon] is only allowed in the main file`,
			},
		},
		{
			name: "a named file that does not exist",
			files: map[string]string{
				"main.toml": "include = [\"rules.d/*.toml\",\n  \"local.toml\"]\n",
			},
			want: []string{`DIR/main.toml:2:3: include "local.toml": no such file`},
		},
		{
			name: "a malformed pattern",
			files: map[string]string{
				"main.toml": "include = [\"[\"]\n",
			},
			want: []string{`DIR/main.toml:1:12: bad include pattern "[": syntax error in pattern`},
		},
		{
			name: "an empty pattern",
			files: map[string]string{
				"main.toml": "include = [\"\"]\n",
			},
			want: []string{`DIR/main.toml:1:12: include pattern is empty`},
		},
		{
			name: "a pattern matching a directory",
			files: map[string]string{
				"main.toml":      "include = [\"rules*\"]\n",
				"rules.d/a.toml": "",
			},
			want: []string{`DIR/main.toml:1:12: include "rules*": read DIR/rules.d: is a directory`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			cfg, _, err := Load(filepath.Join(dir, "main.toml"))
			if err == nil {
				t.Fatalf("Load accepted the policy")
			}
			if cfg != nil {
				t.Errorf("Load returned a Config along with errors")
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), dir, "DIR"), "\n")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResolvesIncludesBesideName(t *testing.T) {
	dir := writeTree(t, map[string]string{"zones.toml": "[[zone]]\nname = \"wan\"\n"})
	cfg, _, err := Parse(filepath.Join(dir, "virtual.toml"), []byte(`include = ["zones.toml"]`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(cfg.Zones) != 1 || cfg.Zones[0].Name != "wan" {
		t.Errorf("zones = %+v, want the included wan zone", cfg.Zones)
	}
}
