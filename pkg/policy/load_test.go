package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
)

const loadMain = `include = ["rules.d/*.toml"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[zone]]
name = "wan"
interfaces = ["eth0"]
`

func writePolicy(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	main := writePolicy(t, dir, "picoseg.toml", loadMain)
	writePolicy(t, dir, "rules.d/10-devices.toml", "[[device]]\nname = \"cam\"\nip = [\"10.77.0.11\"]\n")
	gw := netip.MustParseAddr("10.77.0.1")
	l, _, err := Load(main, Options{GatewayAddrs: []netip.Addr{gw}})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Config.Files) != 2 || len(l.Policy.Devices) != 1 || !l.Policy.IsGateway(gw) {
		t.Fatalf("files %v, devices %v, gateway %v", l.Config.Files, l.Policy.Devices, l.Policy.IsGateway(gw))
	}

	// The hash covers the included files: a change there is a new policy.
	writePolicy(t, dir, "rules.d/10-devices.toml", "[[device]]\nname = \"cam\"\nip = [\"10.77.0.12\"]\n")
	again, _, err := Load(main, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Policy.Hash == l.Policy.Hash {
		t.Error("an included file changed, the hash did not")
	}

	// A mistake in an include is reported where it is written.
	bad := writePolicy(t, dir, "rules.d/20-bad.toml", "[[device]]\nname = \"plug\"\nip = [\"10.77.0.13\"]\ngroups = [\"plugz\"]\n")
	_, _, err = Load(main, Options{})
	var list config.ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), bad+":4:") {
		t.Fatalf("error %v, want a config.ErrorList at %s:4", err, bad)
	}
}
