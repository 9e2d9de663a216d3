package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	spaCipherB64 = "/9ZO13HPywMwLbScll29vqAML6vJe6ta6FzRYWpHsbI="
	spaHMACB64   = "UfVBk7Lvib+3aRGodWxnn0Q1kiccG+5sPXg1rtbfyfsI/07JFi+LRow9sadtz/6N5U8MIK7D4RbJxo22hgG4GA=="
	spaPolicy    = `[[zone]]
name = "lan"
networks = ["10.88.0.0/24"]

[[group]]
name = "admins"

[[device]]
name = "laptop"
ip = ["10.88.0.2"]
groups = ["admins"]

[[device]]
name = "hub"
ip = ["10.88.0.9"]

[[segment]]
from = "lan"
to = "lan"
action = "micro"
`
)

func TestParseSPA(t *testing.T) {
	src := `[spa]
port = 40001

[[spa_key]]
name = "admin"
key_base64 = "` + spaCipherB64 + `"
hmac_key_base64 = "` + spaHMACB64 + `"
from = ["group:admins"]
` + spaPolicy + `
[[allow]]
name = "hub-admin"
from = "group:admins"
to = "device:hub"
services = ["tcp/22"]
auth = "spa"
spa_keys = ["admin"]
spa_window = "45s"
`
	cfg, _, err := Parse("policy.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SPA.Port != 40001 || len(cfg.SPA.Keys) != 1 || len(cfg.SPA.Keys[0].Cipher) != 32 || len(cfg.SPA.Keys[0].HMAC) != 64 {
		t.Errorf("spa %+v", cfg.SPA)
	}
	if a := cfg.Allows[0].Auth; a == nil || a.Window != 45*time.Second || len(a.Keys) != 1 || a.Keys[0] != "admin" {
		t.Errorf("auth %+v", a)
	}
}

func writeKeyFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.keys")
	data := "KEY_BASE64: " + spaCipherB64 + "\nHMAC_KEY_BASE64: " + spaHMACB64 + "\n"
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseSPAKeyFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		want string
	}{
		{"owner only", 0o600, ""},
		{"world-readable", 0o644, "mode 0644: readable or writable by others than its owner"},
		{"group-readable", 0o640, "mode 0640"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeKeyFile(t, tc.mode)
			src := `[[spa_key]]
name = "admin"
key_file = "` + path + `"
from = ["device:laptop"]
` + spaPolicy
			cfg, _, err := Parse("policy.toml", []byte(src))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k := cfg.SPA.Keys[0]; len(k.Cipher) != 32 || len(k.HMAC) != 64 || k.File != path {
					t.Errorf("key %+v", k)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestParseSPAErrors(t *testing.T) {
	key := func(cipher, hmac string) string {
		return `[[spa_key]]
name = "admin"
key_base64 = "` + cipher + `"
hmac_key_base64 = "` + hmac + `"
from = ["group:admins"]
`
	}
	rule := func(extra string) string {
		return `
[[allow]]
name = "hub-admin"
from = "group:admins"
to = "device:hub"
services = ["tcp/22"]
` + extra
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"short cipher key", key("AAAA", spaHMACB64), "policy.toml:3:14: key_base64 is 3 bytes, want 32"},
		{"short hmac key", key(spaCipherB64, "AAAA"), "policy.toml:4:19: hmac_key_base64 is 3 bytes, want 32 to 128"},
		{"not base64", key(spaCipherB64, "!!"), "hmac_key_base64 is not base64"},
		{"unknown key", key(spaCipherB64, spaHMACB64) + spaPolicy + rule(`auth = "spa"
spa_keys = ["nobody"]`), `unknown spa_key "nobody"`},
		{"keys without auth", key(spaCipherB64, spaHMACB64) + spaPolicy + rule(`spa_keys = ["admin"]`), `spa_keys without auth = "spa"`},
		{"auth without keys", key(spaCipherB64, spaHMACB64) + spaPolicy + rule(`auth = "spa"`), `needs spa_keys`},
		{"other auth", key(spaCipherB64, spaHMACB64) + spaPolicy + rule(`auth = "password"`), `auth = "password": want "spa"`},
		{"long window", key(spaCipherB64, spaHMACB64) + spaPolicy + rule(`auth = "spa"
spa_keys = ["admin"]
spa_window = "2h"`), `spa_window 2h0m0s: want 1s to 1h0m0s`},
		{"unknown user", `[[spa_key]]
name = "admin"
key_base64 = "` + spaCipherB64 + `"
hmac_key_base64 = "` + spaHMACB64 + `"
from = ["device:nobody"]
` + spaPolicy, `unknown device "nobody"`},
		{"no keys", `[[spa_key]]
name = "admin"
from = ["any"]
`, `needs key_base64 and hmac_key_base64`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("policy.toml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
