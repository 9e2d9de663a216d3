//go:build linux

package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropPrivileges becomes the policy's [daemon] user, keeping CAP_NET_ADMIN
// only, once everything that needs more is done (the lock file, modprobe,
// the status socket). The daemon parses hostile packets for its whole
// life: a bug there must not hand out root. CAP_NET_ADMIN is what it still
// needs: nftables (reloads, restoring a lost table, counters), conntrack,
// re-opening a queue, and the bridges' switches on exit.
//
// Credentials are per thread in Linux, and a Go program has many threads:
// every step runs on all of them at once (syscall.AllThreadsSyscall, which
// the setuid family uses too), so no thread keeps root. A binary built
// with cgo cannot do that; it refuses before changing anything.
func (d *Daemon) dropPrivileges() error {
	name := d.cfg.User
	if name == "" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("[daemon] user: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil || uid == 0 {
		return fmt.Errorf("[daemon] user %q: uid %s gid %s is not an unprivileged user", name, u.Uid, u.Gid)
	}
	if os.Geteuid() != 0 {
		if os.Geteuid() == uid {
			return nil // the service manager did it
		}
		return fmt.Errorf("[daemon] user %q: running as uid %d, cannot become uid %d", name, os.Geteuid(), uid)
	}
	if err := keepOnly(unix.CAP_NET_ADMIN, uid, gid); err != nil {
		return fmt.Errorf("dropping privileges to user %q: %w", name, err)
	}
	p := currentPrivileges()
	d.log.Info("privileges dropped", "user", name, "uid", p.UID, "gid", p.GID, "capabilities", p.Capabilities)
	state := d.cur.Config.Inventory.State
	if d.opts.InventoryState != "" {
		state = d.opts.InventoryState
	}
	if unix.Access(filepath.Dir(state), unix.W_OK) != nil {
		d.log.Warn("the device inventory cannot be saved: its directory is not writable by the daemon's user (systemd: StateDirectory=picoseg)", "user", name, "dir", filepath.Dir(state))
	}
	return nil
}

// allThreads runs one system call on every thread of the process.
func allThreads(what string, trap, a1, a2, a3 uintptr) error {
	if _, _, errno := syscall.AllThreadsSyscall(trap, a1, a2, a3); errno != 0 {
		if errno == syscall.ENOTSUP {
			return fmt.Errorf("%s: this binary is built with cgo, which cannot change every thread's credentials; build it with CGO_ENABLED=0 (make build does), or let the service manager set the user", what)
		}
		return fmt.Errorf("%s: %w", what, errno)
	}
	return nil
}

// keepOnly becomes uid and gid with the capability keep alone: in the
// effective and permitted sets and in the bounding set, so that no exec
// can bring the others back either.
func keepOnly(keep uintptr, uid, gid int) error {
	// First: it fails at once, changing nothing, where it cannot work.
	if err := allThreads("no_new_privs", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return err
	}
	last := lastCap()
	for c := uintptr(0); c <= last; c++ {
		if c == keep {
			continue
		}
		if err := allThreads("bounding set", unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0); err != nil {
			return err
		}
	}
	if err := allThreads("keepcaps", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[keep/32].Effective = 1 << (keep % 32)
	data[keep/32].Permitted = 1 << (keep % 32)
	if err := allThreads("capset", unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err != nil {
		return err
	}
	if err := allThreads("keepcaps", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); err != nil {
		return err
	}
	return allThreads("ambient set", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0)
}

// lastCap is the highest capability number the kernel knows.
func lastCap() uintptr {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return unix.CAP_LAST_CAP
	}
	return uintptr(n)
}

// currentPrivileges reads the process's uid, gid and effective
// capabilities from /proc/self/status.
func currentPrivileges() *Privileges {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	p, err := parseProcStatus(bufio.NewScanner(f))
	if err != nil {
		return nil
	}
	return p
}

// parseProcStatus reads the Uid, Gid and CapEff lines of a
// /proc/PID/status file.
func parseProcStatus(sc *bufio.Scanner) (*Privileges, error) {
	p := &Privileges{UID: -1, GID: -1}
	var eff uint64
	var haveCaps bool
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		switch key {
		case "Uid":
			p.UID, _ = strconv.Atoi(fields[1%len(fields)]) // the effective uid
		case "Gid":
			p.GID, _ = strconv.Atoi(fields[1%len(fields)])
		case "CapEff":
			v, err := strconv.ParseUint(fields[0], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("CapEff %q: %w", fields[0], err)
			}
			eff, haveCaps = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.UID < 0 || !haveCaps {
		return nil, errors.New("no Uid or CapEff line")
	}
	p.Capabilities = capNames(eff, lastCap())
	return p, nil
}

// capNames names the capabilities in mask; "all" when every one up to
// last is there.
func capNames(mask uint64, last uintptr) []string {
	if all := uint64(1)<<(last+1) - 1; last < 63 && mask&all == all {
		return []string{"all"}
	}
	names := []string{}
	for c := 0; c < 64; c++ {
		if mask&(1<<c) == 0 {
			continue
		}
		if c < len(capabilityNames) {
			names = append(names, capabilityNames[c])
		} else {
			names = append(names, "cap_"+strconv.Itoa(c))
		}
	}
	return names
}

// capabilityNames are the capabilities by number, as capabilities(7)
// spells them.
var capabilityNames = [...]string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
	"cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
	"cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct",
	"cap_sys_admin", "cap_sys_boot", "cap_sys_nice", "cap_sys_resource", "cap_sys_time",
	"cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write", "cap_audit_control",
	"cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
}
