package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
)

// The README's examples are part of the documentation people copy: every
// TOML block must load as a policy, and the sample explain session must be
// what explain prints.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no TOML example")
	}
	for i, m := range blocks {
		cfg, warnings, err := config.Parse("README.md", []byte(m[1]))
		if err != nil {
			t.Errorf("TOML block %d does not load:\n%v", i+1, err)
			continue
		}
		for _, w := range warnings {
			t.Errorf("TOML block %d: %s", i+1, w)
		}
		if len(cfg.Allows) == 0 {
			t.Errorf("TOML block %d has no allow rule", i+1)
		}
	}

	session := regexp.MustCompile("(?s)\\$ picoseg explain (.*?)\n(.*?)```").FindStringSubmatch(readme)
	if session == nil {
		t.Fatal("the README has no explain session")
	}
	args := regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(session[1], -1)
	for i, a := range args {
		args[i] = strings.Trim(a, `"`)
		if args[i] == "rules/home.toml" {
			args[i] = "../../rules/home.toml"
		}
	}
	code, out, errs := runCmd(t, append([]string{"explain"}, args...)...)
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, errs)
	}
	want := strings.ReplaceAll(session[2], "rules/home.toml", "../../rules/home.toml")
	if out != want {
		t.Errorf("the README's explain session is not what explain prints (-want +got):\n-%s\n+%s", want, out)
	}
}

// TestReadmeMUDImport: the README's mud import session is what the
// command prints after the base policy, which the session shows as one
// line.
func TestReadmeMUDImport(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	session := regexp.MustCompile("(?s)\\$ picoseg mud import (.*?)\n\\.\\.\\.(\\S+), unchanged\\.\\.\\.\n(.*?)```").FindStringSubmatch(string(b))
	if session == nil {
		t.Fatal("the README has no mud import session")
	}
	args := []string{"mud", "import"}
	for _, a := range strings.Fields(session[1]) {
		switch a {
		case session[2]:
			a = "../../" + a
		case "plug.json":
			a = mudPlug
		}
		args = append(args, a)
	}
	code, out, errs := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("mud import: exit %d: %s", code, errs)
	}
	base, err := os.ReadFile("../../" + session[2])
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(out, string(base))
	if !ok {
		t.Fatalf("the output does not start with %s:\n%s", session[2], out)
	}
	if got := strings.TrimLeft(rest, "\n"); got != session[3] {
		t.Errorf("the README's mud import session is not what the command prints (-want +got):\n-%s\n+%s", session[3], got)
	}
}
