package packagetest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ipkFiles is every file the .ipk installs.
var ipkFiles = map[string]fileSpec{
	"./usr/sbin/picoseg":              {0o755, ""},
	"./etc/picoseg/picoseg.toml":      {0o644, "packaging/openwrt/picoseg/files/picoseg.toml"},
	"./etc/init.d/picoseg":            {0o755, "packaging/openwrt/picoseg/files/picoseg.init"},
	"./etc/capabilities/picoseg.json": {0o644, "packaging/openwrt/picoseg/files/picoseg.json"},
}

// ipkArches are the OpenWrt architectures picoseg ships to.
var ipkArches = []string{"aarch64_cortex-a53", "aarch64_generic", "arm_cortex-a7_neon-vfpv4", "mipsel_24kc", "mips_24kc", "x86_64"}

// maxIPK is what an 8 MB-flash router can take for picoseg; such routers
// are MIPS (ARM and x86 ones have more flash).
const maxIPK = 4_000_000

// smallFlash are the architectures held to maxIPK.
var smallFlash = map[string]bool{"mipsel_24kc": true, "mips_24kc": true}

func TestIPK(t *testing.T) {
	ipks := built(t, "ipk")
	arches := map[string]bool{}
	for _, path := range ipks {
		version, arch := nameParts(t, path)
		arches[arch] = true
		t.Run(arch, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes", filepath.Base(path), len(raw))
			if smallFlash[arch] && len(raw) > maxIPK {
				t.Errorf("%s is %d bytes, over %d", filepath.Base(path), len(raw), maxIPK)
			}
			// OpenWrt's .ipk is a gzipped tar (not an ar) of the same three
			// members as a .deb, in this order.
			outer, err := readTarGz(raw)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range outer {
				names = append(names, m.Name)
			}
			if diff := cmp.Diff([]string{"./debian-binary", "./control.tar.gz", "./data.tar.gz"}, names); diff != "" {
				t.Fatalf("members (-want +got):\n%s", diff)
			}
			control, err := readTarGz(outer[1].Data)
			if err != nil {
				t.Fatal(err)
			}
			data, err := readTarGz(outer[2].Data)
			if err != nil {
				t.Fatal(err)
			}
			checkIPKControl(t, control, version, arch)
			bin := checkData(t, data, ipkFiles, "./usr/sbin/picoseg")
			checkBinary(t, arch, bin)
			checkCapabilities(t, member(t, data, "./etc/capabilities/picoseg.json").Data)
			if ts, ok := versionTime(version); ok {
				checkTimes(t, "ipk", outer, ts)
				checkTimes(t, "control.tar.gz", control, ts)
				checkTimes(t, "data.tar.gz", data, ts)
			}
		})
	}
	for _, a := range ipkArches {
		if !arches[a] {
			t.Errorf("no .ipk for %s", a)
		}
	}
}

// checkIPKControl checks the control archive: fields, Depends, the user
// opkg's default postinst creates, conffiles and the scripts.
func checkIPKControl(t *testing.T, control []entry, version, arch string) {
	t.Helper()
	f := controlFields(t, member(t, control, "./control").Data)
	for k, want := range map[string]string{"Package": "picoseg", "Version": version, "Architecture": arch,
		"Section": "net", "License": "Apache-2.0",
		// default_postinst (OpenWrt's /lib/functions.sh) creates this
		// user and group before it starts the service.
		"Require-User": "picoseg:picoseg"} {
		if f[k] != want {
			t.Errorf("control %s: %q, want %q", k, f[k], want)
		}
	}
	for _, k := range []string{"Maintainer", "Description", "Installed-Size"} {
		if f[k] == "" {
			t.Errorf("control: no %s", k)
		}
	}
	// The queue expression, conntrack over netlink, and the jail that
	// drops to picoseg's user and capability.
	if diff := cmp.Diff([]string{"kmod-nf-conntrack-netlink", "kmod-nft-queue", "procd-ujail"}, list(f["Depends"])); diff != "" {
		t.Errorf("Depends (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"kmod-br-netfilter"}, list(f["Suggests"])); diff != "" {
		t.Errorf("Suggests (-want +got):\n%s", diff)
	}
	if got := string(member(t, control, "./conffiles").Data); got != "/etc/picoseg/picoseg.toml\n" {
		t.Errorf("conffiles %q", got)
	}
	for _, s := range []string{"postinst", "prerm"} {
		e := member(t, control, "./"+s)
		if e.Mode != 0o755 {
			t.Errorf("%s: mode %o, want 755", s, e.Mode)
		}
		if !bytes.Equal(e.Data, source(t, "packaging/openwrt/ipk/"+s)) {
			t.Errorf("%s differs from packaging/openwrt/ipk/%s", s, s)
		}
		shellSyntax(t, s, e.Data)
	}
}

// checkCapabilities checks the capabilities file procd hands to ujail:
// every set holds CAP_NET_ADMIN and nothing else.
func checkCapabilities(t *testing.T, b []byte) {
	t.Helper()
	var caps map[string][]string
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&caps); err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	want := map[string][]string{}
	for _, set := range []string{"bounding", "effective", "ambient", "permitted", "inheritable"} {
		want[set] = []string{"CAP_NET_ADMIN"}
	}
	if diff := cmp.Diff(want, caps); diff != "" {
		t.Errorf("capabilities (-want +got):\n%s", diff)
	}
}
