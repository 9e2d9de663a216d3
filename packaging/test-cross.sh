#!/bin/sh
# make test-cross: picoseg's kernel-free packages, cross-built as test
# binaries and run under qemu-user for each architecture picoseg ships to
# besides amd64, then `picoseg check` and `picoseg replay` of the shared
# captures compared byte for byte with the native build. Big-endian mips is
# where host-endian netlink and network-order headers meet.
#
# Tests run as nobody: the kernel tests skip (qemu-user does not translate
# every netlink family, and they would touch the host's kernel anyway).
set -eu

cd "$(dirname "$0")/.."
GO=${GO:-go}
PCAPS=${PCAPS:-../shared/pcaps}
PKGS="packet flow policy engine config capture replay queue conntrack alert"
# name GOARCH variant qemu QEMU_CPU: the oldest CPU each package targets.
# Tests to skip under emulation, by name (none today: no test asserts
# wall-clock speed).
CROSS_SKIP=${CROSS_SKIP-}
ARCHES="arm64:arm64::aarch64:cortex-a53 armv6:arm:6:arm:arm1176 mipsle:mipsle:softfloat:mipsel:24Kc mips:mips:softfloat:mips:24Kc"

qemu_bin() {
	for q in "qemu-$1-static" "qemu-$1"; do
		if command -v "$q" >/dev/null 2>&1; then command -v "$q"; return; fi
	done
	return 1
}
if ! qemu_bin mips >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing qemu-user-static"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
	else
		echo "make test-cross needs qemu-user-static (apt-get install qemu-user-static)"; exit 1
	fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# The tests find the shared captures at <repo>/../shared/pcaps: give them a
# view of the repository with the captures beside it (read in place).
mkdir -p "$work/tree/shared"
ln -s "$(pwd)" "$work/tree/repo"
if [ -d "$PCAPS" ]; then
	ln -s "$(cd "$PCAPS" && pwd)" "$work/tree/shared/pcaps"
else
	echo "note: $PCAPS not found: replay of the shared captures is skipped"
fi
run_as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

# outputs NAME RUNNER...: what check and replay print, into $work/out/NAME.
outputs() {
	name=$1; shift
	mkdir -p "$work/out/$name"
	for p in rules/*.toml packaging/debian/picoseg.toml packaging/openwrt/picoseg/files/picoseg.toml; do
		echo "== check $p"; "$@" check -c "$p" 2>&1 || echo "exit $?"
	done >"$work/out/$name/check"
	caps=""
	[ -d "$PCAPS" ] && caps=$(find "$PCAPS" -type f \( -name '*.pcap' -o -name '*.pcapng' \) | LC_ALL=C sort)
	for p in rules/*.toml; do
		echo "== replay $p"; "$@" replay -c "$p" $caps 2>&1 || echo "exit $?"
		echo "== replay --json $p"; "$@" replay -c "$p" --json $caps 2>&1 || echo "exit $?"
	done >"$work/out/$name/replay"
}

CGO_ENABLED=0 GOFLAGS=-mod=readonly "$GO" build -trimpath -o "$work/picoseg-native" ./cmd/picoseg
outputs native "$work/picoseg-native"

status=0
summary=""
start_all=$(date +%s)
for spec in $ARCHES; do
	IFS=: read -r name arch variant qemu cpu <<EOF2
$spec
EOF2
	start=$(date +%s)
	q=$(qemu_bin "$qemu")
	case $arch in
	arm) set -- GOARM="$variant" ;;
	mips | mipsle) set -- GOMIPS="$variant" ;;
	*) set -- ;;
	esac
	mkdir -p "$work/$name"
	echo "== $name: building"
	env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$@" GOFLAGS=-mod=readonly \
		"$GO" build -trimpath -o "$work/$name/picoseg" ./cmd/picoseg
	for pkg in $PKGS; do
		env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$@" GOFLAGS=-mod=readonly \
			"$GO" test -c -o "$work/$name/$pkg.test" "./pkg/$pkg"
	done
	built=$(date +%s)
	result="ok"
	for pkg in $PKGS; do
		printf '%s %-10s ' "$name" "$pkg"
		log="$work/$name/$pkg.log"
		if (cd "$work/tree/repo/pkg/$pkg" && QEMU_CPU=$cpu run_as_nobody "$q" "$work/$name/$pkg.test" \
			-test.v -test.count=1 -test.timeout=20m ${CROSS_SKIP:+-test.skip "^($(echo "$CROSS_SKIP" | tr ' ' '|'))\$"} >"$log" 2>&1); then
			echo "ok   $(grep -c -- '^--- PASS' "$log" || true) passed, $(grep -c -- '^--- SKIP' "$log" || true) skipped"
		else
			echo "FAIL"; sed 's/^/    /' "$log" | tail -40; result="FAIL"; status=1
		fi
	done
	outputs "$name" env QEMU_CPU="$cpu" "$q" "$work/$name/picoseg"
	for f in check replay; do
		if cmp -s "$work/out/native/$f" "$work/out/$name/$f"; then
			echo "$name $f output: identical to amd64 ($(wc -l <"$work/out/$name/$f") lines)"
		else
			echo "$name $f output: DIFFERS from amd64:"; diff "$work/out/native/$f" "$work/out/$name/$f" | head -20
			result="FAIL"; status=1
		fi
	done
	summary="$summary
$name: $result: $(($(date +%s) - start)) s ($((built - start)) s building, $(($(date +%s) - built)) s running)"
done
[ -n "$CROSS_SKIP" ] && echo "skipped under emulation: $CROSS_SKIP"
echo "== test-cross$summary
total $(($(date +%s) - start_all)) s"
exit $status
