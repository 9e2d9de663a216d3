#!/bin/sh
# make package-test-systemd: the amd64 .deb installed in a Debian bookworm
# container booted with systemd (debootstrap, systemd-nspawn), as on a real
# machine: the hardened unit must run the daemon as picoseg with
# CAP_NET_ADMIN alone, judge forwarded traffic in monitor mode, reload,
# restart on upgrade only with a policy the new version accepts, keep an
# admin's disable, and leave the policy on removal and nothing on purge.
#
# Root; Debian's debootstrap and systemd-container; the Debian mirror. The
# container's root file system is kept in $ROOTFS between runs and each run
# boots a throw-away copy of it (--ephemeral).
set -eu

cd "$(dirname "$0")/.."
ROOTFS=${ROOTFS:-/var/tmp/picoseg-systemd-root}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
deb=$(ls dist/picoseg_*_amd64.deb 2>/dev/null | head -1) || true
[ -n "$deb" ] || { echo "no dist/picoseg_*_amd64.deb: run make package"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "make package-test-systemd needs root"; exit 1; }
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container python3:python3 curl:curl; do
	command -v "${tool%%:*}" >/dev/null || { echo "installing ${tool#*:}"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }
done
if [ ! -x "$ROOTFS/lib/systemd/systemd" ]; then
	echo "debootstrap bookworm into $ROOTFS"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,procps,kmod,nftables \
		bookworm "$ROOTFS" "$MIRROR" >/dev/null
fi

passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
# expect NAME WANT GOT
expect() { if [ "$3" = "$2" ]; then ok "$1: $3"; else bad "$1: got '$3', want '$2'"; fi; }
# contains NAME NEEDLE HAYSTACK
contains() { case "$3" in *"$2"*) ok "$1" ;; *) bad "$1: no '$2' in: $3" ;; esac; }

log=$(mktemp)
tag=$$
p1=pkgsd-p1-$tag p2=pkgsd-p2-$tag
cleanup() {
	[ -n "${leader:-}" ] && nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1 || true
	[ -n "${http:-}" ] && kill "$http" 2>/dev/null || true
	ip netns del "$p1" 2>/dev/null || true
	ip netns del "$p2" 2>/dev/null || true
	if [ -n "${nspawn:-}" ]; then
		i=0; while kill -0 "$nspawn" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		kill "$nspawn" 2>/dev/null || true
	fi
	rm -f "$log"
}
trap cleanup EXIT

systemd-nspawn -D "$ROOTFS" --ephemeral --keep-unit --register=no --private-network \
	--bind-ro="$(pwd)/dist:/dist" -b >"$log" 2>&1 &
nspawn=$!
leader=""
i=0
while [ $i -lt 60 ]; do
	leader=$(pgrep -P "$nspawn" | head -1) || true
	if [ -n "$leader" ]; then
		state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null) || true
		case "$state" in running | degraded) break ;; esac
	fi
	sleep 1; i=$((i + 1))
done
[ -n "$leader" ] || { cat "$log"; echo "the container did not boot"; exit 1; }
C() { nsenter -t "$leader" -a "$@"; }
N() { nsenter -t "$leader" -n "$@"; }
echo "container booted (systemd $(C systemctl --version | head -1 | cut -d' ' -f2)); installing $(basename "$deb")"

# wait_ready: the status socket answers (the table is in place by then).
wait_ready() {
	i=0
	while ! C picoseg status >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
}

C dpkg -i "/dist/$(basename "$deb")" >/dev/null
wait_ready
expect "enabled on first install" enabled "$(C systemctl is-enabled picoseg)"
expect "started on first install" active "$(C systemctl is-active picoseg)"
pid=$(C systemctl show -p MainPID --value picoseg)
expect "runs as" picoseg "$(C ps -o user= -p "$pid")"
for set in Eff Prm Bnd Amb; do
	# 0x1000 is bit 12: CAP_NET_ADMIN, and nothing else.
	expect "Cap$set" 0000000000001000 "$(C sed -n "s/^Cap$set:[[:space:]]*//p" /proc/"$pid"/status)"
done
expect NoNewPrivs 1 "$(C sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/"$pid"/status)"
expect "seccomp filter" 2 "$(C sed -n 's/^Seccomp:[[:space:]]*//p' /proc/"$pid"/status)"
contains "its nftables table" "table inet picoseg" "$(C nft list tables)"
contains "status over the socket, monitor mode" "generation 1, monitor mode" "$(C picoseg status)"
C systemctl reload picoseg
sleep 1
contains "systemctl reload re-reads the policy" "generation 2" "$(C picoseg status)"
contains "systemd-analyze security" "OK" "$(C systemd-analyze security picoseg --no-pager | tail -1)"

# Traffic through the container: an IoT device on wlan0, a server on eth0.
ip netns add "$p1"; ip netns add "$p2"
N ip link add wlan0 type veth peer name pk1-$tag; N ip link set pk1-$tag netns "$p1"
N ip link add eth0 type veth peer name pk2-$tag; N ip link set pk2-$tag netns "$p2"
N ip addr add 10.77.0.1/24 dev wlan0; N ip link set wlan0 up
N ip addr add 198.51.100.1/24 dev eth0; N ip link set eth0 up
N sysctl -qw net.ipv4.ip_forward=1
ip -n "$p1" addr add 10.77.0.2/24 dev pk1-$tag; ip -n "$p1" link set pk1-$tag up; ip -n "$p1" route add default via 10.77.0.1
ip -n "$p2" addr add 198.51.100.2/24 dev pk2-$tag; ip -n "$p2" link set pk2-$tag up; ip -n "$p2" route add default via 198.51.100.1
ip netns exec "$p2" python3 -m http.server 443 --bind 198.51.100.2 >/dev/null 2>&1 &
http=$!
sleep 1
expect "allowed flow (iot to wan tcp/443)" 200 "$(ip netns exec "$p1" curl -s -o /dev/null -w '%{http_code}' -m 5 http://198.51.100.2:443/ || true)"
# Monitor mode: a flow the policy denies still reaches the server (which
# refuses it: nothing listens on 22), and raises an alert.
ip netns exec "$p1" curl -s -o /dev/null -m 5 http://198.51.100.2:22/ && rc=0 || rc=$?
expect "denied flow passes in monitor mode (connection refused by the server)" 7 "$rc"
sleep 1
contains "alert for the denied flow" "tcp/22: flow denied" "$(C picoseg status alerts)"

C dpkg -i "/dist/$(basename "$deb")" >/dev/null
wait_ready
new=$(C systemctl show -p MainPID --value picoseg)
[ "$new" != "$pid" ] && ok "upgrade restarts the daemon ($pid -> $new)" || bad "upgrade did not restart the daemon"
C sh -c 'echo "mode = \"sometimes\"" >>/etc/picoseg/picoseg.toml'
out=$(C dpkg -i "/dist/$(basename "$deb")" 2>&1)
expect "a refused policy on upgrade keeps the daemon" "$new" "$(C systemctl show -p MainPID --value picoseg)"
contains "and says so" "the running daemon keeps its policy" "$out"
C sed -i '$d' /etc/picoseg/picoseg.toml
C systemctl disable picoseg 2>/dev/null
C dpkg -i "/dist/$(basename "$deb")" >/dev/null
# The daemon restarted: let it finish starting before it is stopped (a
# SIGTERM while it starts can leave its table behind).
wait_ready
expect "an upgrade keeps an admin's disable" disabled "$(C systemctl is-enabled picoseg)"

C sh -c 'echo "# edited" >>/etc/picoseg/picoseg.toml'
C dpkg -r picoseg >/dev/null
expect "removed: stopped" inactive "$(C systemctl is-active picoseg || true)"
expect "removed: table gone" "" "$(C nft list tables)"
expect "removed: the edited policy stays" "# edited" "$(C tail -1 /etc/picoseg/picoseg.toml)"
C dpkg -P picoseg >/dev/null
expect "purged: policy and state gone" "" "$(C sh -c 'ls -d /etc/picoseg /var/lib/picoseg 2>/dev/null' || true)"

if [ "$failed" != 0 ]; then
	echo "--- journalctl -u picoseg in the container:"
	C journalctl -u picoseg --no-pager | tail -40
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
