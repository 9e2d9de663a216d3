package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// procdStub stands in for OpenWrt's rc.common and procd.sh: each function
// records its call, and, as procd.sh does, refuses an instance parameter
// outside procd_open_instance … procd_close_instance. File system commands
// are recorded instead of run.
const procdStub = `
log=$1; script=$2
in_instance=0
rec() { echo "$*" >>"$log"; }
need_instance() { [ "$in_instance" = 1 ] || { rec "ERROR $1 outside an instance"; exit 3; }; }
procd_open_instance() { [ "$in_instance" = 0 ] || { rec "ERROR nested instance"; exit 3; }; in_instance=1; rec procd_open_instance "$@"; }
procd_close_instance() { need_instance procd_close_instance; in_instance=0; rec procd_close_instance; }
procd_set_param() {
	need_instance procd_set_param
	case "$1" in
	command|file|respawn|stdout|stderr|reload_signal|user|group|capabilities|no_new_privs|env|limits|term_timeout|pidfile|netdev) ;;
	*) rec "ERROR unknown procd param $1"; exit 3 ;;
	esac
	rec procd_set_param "$@"
}
procd_add_jail() {
	need_instance procd_add_jail
	name=$1; shift
	for flag in "$@"; do
		case "$flag" in
		log|ubus|procfs|sysfs|ronly|requirejail|netns|userns|cgroupsns) ;;
		*) rec "ERROR unknown jail flag $flag"; exit 3 ;;
		esac
	done
	rec procd_add_jail "$name" "$@"
}
procd_send_signal() { rec procd_send_signal "$@"; }
mkdir() { rec mkdir "$@"; }
chown() { rec chown "$@"; }
chmod() { rec chmod "$@"; }
. "$script"
rec "START=$START STOP=$STOP USE_PROCD=$USE_PROCD"
rec "-- start"
start_service
[ "$in_instance" = 0 ] || rec "ERROR instance left open"
rec "-- reload"
reload_service
`

// TestInitScript runs the OpenWrt init script's start_service and
// reload_service against a stub of procd's shell API and checks every call:
// respawn, reload by SIGHUP, the policy watched as a file, stdout and
// stderr to logd, and an unprivileged run in ujail with the package's
// capabilities file and no way back to root.
func TestInitScript(t *testing.T) {
	script := filepath.Join(repoRoot(t), "packaging/openwrt/picoseg/files/picoseg.init")
	body := source(t, "packaging/openwrt/picoseg/files/picoseg.init")
	shellSyntax(t, "picoseg.init", body)
	if !strings.HasPrefix(string(body), "#!/bin/sh /etc/rc.common\n") {
		t.Errorf("init script does not start with #!/bin/sh /etc/rc.common")
	}
	dir := t.TempDir()
	stub, log := filepath.Join(dir, "stub.sh"), filepath.Join(dir, "calls")
	if err := os.WriteFile(stub, []byte(procdStub), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", stub, log, script).CombinedOutput(); err != nil {
		calls, _ := os.ReadFile(log)
		t.Fatalf("init script under the procd stub: %v\n%s\ncalls:\n%s", err, out, calls)
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"START=25 STOP=10 USE_PROCD=1",
		"-- start",
		"mkdir -p /var/run/picoseg /var/lib/picoseg",
		"chown picoseg:picoseg /var/run/picoseg /var/lib/picoseg",
		"chmod 0750 /var/run/picoseg /var/lib/picoseg",
		"procd_open_instance",
		"procd_set_param command /usr/sbin/picoseg run -c /etc/picoseg/picoseg.toml",
		"procd_set_param file /etc/picoseg/picoseg.toml",
		"procd_set_param reload_signal HUP",
		"procd_set_param respawn",
		"procd_set_param stdout 1",
		"procd_set_param stderr 1",
		"procd_add_jail picoseg requirejail",
		"procd_set_param user picoseg",
		"procd_set_param group picoseg",
		"procd_set_param capabilities /etc/capabilities/picoseg.json",
		"procd_set_param no_new_privs 1",
		"procd_close_instance",
		"-- reload",
		"procd_send_signal picoseg * HUP",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(calls)), "\n")); diff != "" {
		t.Errorf("procd calls (-want +got):\n%s", diff)
	}
	// The files the calls name are the ones the package installs.
	for _, f := range []string{"/etc/capabilities/picoseg.json", "/etc/picoseg/picoseg.toml"} {
		if _, ok := ipkFiles["."+f]; !ok {
			t.Errorf("the init script uses %s, which the .ipk does not install", f)
		}
	}
}

// TestIPKScripts runs the .ipk's postinst and prerm as opkg does (from
// /usr/lib/opkg/info/picoseg.*) against a stub of OpenWrt's
// /lib/functions.sh: they hand over to default_postinst and default_prerm
// for the package picoseg, which create the user and enable and start, or
// stop, the service; and the postinst does nothing when an image is built
// with IPKG_NO_SCRIPT=1.
func TestIPKScripts(t *testing.T) {
	root := t.TempDir()
	info := filepath.Join(root, "usr/lib/opkg/info")
	if err := os.MkdirAll(filepath.Join(root, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(root, "calls")
	stub := `default_postinst() { echo "default_postinst $(basename ${1%.*}) $2" >>` + log + `; }
default_prerm() { echo "default_prerm $(basename ${1%.*}) $2" >>` + log + `; }
`
	if err := os.WriteFile(filepath.Join(root, "lib/functions.sh"), []byte(stub), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		script, arg, noScript, want string
	}{
		{"postinst", "configure", "", "default_postinst picoseg configure"},
		{"prerm", "remove", "", "default_prerm picoseg remove"},
		{"postinst", "configure", "1", ""},
	} {
		path := filepath.Join(info, "picoseg."+tc.script)
		if err := os.WriteFile(path, source(t, "packaging/openwrt/ipk/"+tc.script), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(log)
		cmd := exec.Command("sh", path, tc.arg)
		cmd.Env = append(os.Environ(), "IPKG_INSTROOT="+root, "IPKG_NO_SCRIPT="+tc.noScript)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", tc.script, err, out)
		}
		got, _ := os.ReadFile(log)
		if strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("%s %s (IPKG_NO_SCRIPT=%q): calls %q, want %q", tc.script, tc.arg, tc.noScript, got, tc.want)
		}
	}
}
