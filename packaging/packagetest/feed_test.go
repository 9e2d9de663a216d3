package packagetest

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFeedMakefile checks the OpenWrt feed package against the .ipk that
// make package builds, so the two cannot drift apart: the same
// dependencies, the same files with the same modes, the same conffile and
// service user, and the Go build through golang-package.mk.
func TestFeedMakefile(t *testing.T) {
	mk := string(source(t, "packaging/openwrt/picoseg/Makefile"))
	for _, want := range []string{
		"include $(TOPDIR)/feeds/packages/lang/golang/golang-package.mk",
		"GO_PKG:=github.com/picoseg/picoseg\n",
		"GO_PKG_BUILD_PKG:=github.com/picoseg/picoseg/cmd/picoseg\n",
		"USERID:=picoseg:picoseg\n",
		"$(eval $(call GoBinPackage,picoseg))",
		"$(eval $(call BuildPackage,picoseg))",
	} {
		if !strings.Contains(mk, want) {
			t.Errorf("feed Makefile lacks %q", want)
		}
	}
	deps := regexp.MustCompile(`(?m)^\s*DEPENDS:=(.*)$`).FindStringSubmatch(mk)
	if deps == nil {
		t.Fatal("feed Makefile has no DEPENDS")
	}
	var feedDeps []string
	for _, d := range strings.Fields(deps[1]) {
		if d != "$(GO_ARCH_DEPENDS)" {
			feedDeps = append(feedDeps, strings.TrimPrefix(d, "+"))
		}
	}
	sort.Strings(feedDeps)
	if diff := cmp.Diff(nfpmList(t, "packaging/nfpm/ipk.yaml", "depends"), feedDeps); diff != "" {
		t.Errorf("feed DEPENDS and the .ipk's depends differ (-ipk +feed):\n%s", diff)
	}
	conf := regexp.MustCompile(`(?s)define Package/picoseg/conffiles\n(.*?)\nendef`).FindStringSubmatch(mk)
	if conf == nil || strings.TrimSpace(conf[1]) != "/etc/picoseg/picoseg.toml" {
		t.Errorf("feed conffiles: %q", conf)
	}
	// Every file the .ipk installs, installed by the same file with a
	// command giving the same mode (INSTALL_BIN 0755, INSTALL_DATA 0644;
	// INSTALL_CONF's 0600 would hide the policy from the service user).
	install := regexp.MustCompile(`\$\((INSTALL_BIN|INSTALL_DATA|INSTALL_CONF)\) (\S+) \$\(1\)(\S+)`)
	got := map[string]fileSpec{}
	for _, m := range install.FindAllStringSubmatch(mk, -1) {
		mode := map[string]int64{"INSTALL_BIN": 0o755, "INSTALL_DATA": 0o644, "INSTALL_CONF": 0o600}[m[1]]
		src := ""
		if rel, ok := strings.CutPrefix(m[2], "./"); ok {
			src = "packaging/openwrt/picoseg/" + rel
			if _, err := os.Stat(filepath.Join(repoRoot(t), src)); err != nil {
				t.Errorf("feed installs %s: %v", m[2], err)
			}
		}
		got["."+m[3]] = fileSpec{mode, src}
	}
	if diff := cmp.Diff(ipkFiles, got, cmp.AllowUnexported(fileSpec{})); diff != "" {
		t.Errorf("feed install and the .ipk's files differ (-ipk +feed):\n%s", diff)
	}
}

// nfpmList reads a top-level list (depends, suggests) of an nfpm
// configuration, sorted.
func nfpmList(t *testing.T, file, key string) []string {
	t.Helper()
	var out []string
	in := false
	for _, line := range strings.Split(string(source(t, file)), "\n") {
		switch {
		case line == key+":":
			in = true
		case in && strings.HasPrefix(line, "  - "):
			out = append(out, strings.TrimSpace(strings.TrimPrefix(line, "  - ")))
		case in && !strings.HasPrefix(line, "#"):
			in = false
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no %s list", file, key)
	}
	sort.Strings(out)
	return out
}
