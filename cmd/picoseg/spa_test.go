package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check names the SPA port, the keys and who may use them, and the rules
// closed until a knock; it refuses a key file others can read, at the line
// that names it.
func TestCheckShowsSPA(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "admin.keys")
	if err := os.WriteFile(keys, []byte("KEY_BASE64: /9ZO13HPywMwLbScll29vqAML6vJe6ta6FzRYWpHsbI=\nHMAC_KEY_BASE64: UfVBk7Lvib+3aRGodWxnn0Q1kiccG+5sPXg1rtbfyfsI/07JFi+LRow9sadtz/6N5U8MIK7D4RbJxo22hgG4GA==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../rules/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `services = ["tcp/22"]`, `services = ["tcp/22"]
auth = "spa"
spa_keys = ["admin"]`, 1) + `
[[spa_key]]
name = "admin"
key_file = "` + keys + `"
from = ["device:admin"]
`
	policy := writePolicy(t, text)
	code, out, errs := runCmd(t, "check", "-c", policy)
	if code != 0 {
		t.Fatalf("check: %d %s", code, errs)
	}
	for _, want := range []string{
		"knocks to udp/62201 on the gateway",
		"key admin            from device:admin (" + keys + ")",
		"rule admin-ssh-gateway closed until a knock with admin; open 30s after it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if err := os.Chmod(keys, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, "check", "-c", policy)
	if code != 1 || !strings.Contains(errs, policy+":") || !strings.Contains(errs, "mode 0644") {
		t.Errorf("check of a world-readable key file: %d %s", code, errs)
	}
}
