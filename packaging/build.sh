#!/bin/sh
# Builds picoseg's packages into dist/, reproducibly: the same commit gives
# the same bytes, wherever it is checked out. Every timestamp is the last
# commit's (SOURCE_DATE_EPOCH); paths, build ids and version-control stamps
# are left out of the binaries (-trimpath, -buildid=, -buildvcs=false: a
# clone stamps them, a git worktree does not), the version is set with -X;
# file modes and owners are set in the nfpm configurations, not taken from
# the checkout. The Go toolchain is part of the input.
#
#   packaging/build.sh [NFPM]      (make package)
set -eu

cd "$(dirname "$0")/.."
NFPM=${1:-bin/nfpm}
GO=${GO:-go}

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
if [ -n "${PKG_VERSION:-}" ]; then
	: # given (make package-test's second build, in a copy without .git)
elif tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
	PKG_VERSION=${tag#v}
else
	# Sorts before the next release in both dpkg and opkg ("~").
	PKG_VERSION=0.0.0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S).$(git rev-parse --short=12 HEAD)
fi
export PKG_VERSION

rm -rf dist
mkdir -p dist/bin

# build NAME GOARCH [GOARM|GOMIPS value]: a static, stripped binary.
build() {
	name=$1 arch=$2 variant=${3:-}
	out=dist/bin/picoseg-linux-$name
	case $arch in
	arm) env_variant="GOARM=$variant" ;;
	mips | mipsle) env_variant="GOMIPS=$variant" ;;
	*) env_variant="" ;;
	esac
	echo "build $out"
	env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" $env_variant GOFLAGS=-mod=readonly \
		"$GO" build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=$PKG_VERSION" \
		-o "$out" ./cmd/picoseg
}

build amd64 amd64
build arm64 arm64
build armv6 arm 6
build armv7 arm 7
build mipsle mipsle softfloat
build mips mips softfloat

# Debian's changelog of a native package: one entry, this build's.
mkdir -p dist/build
{
	echo "picoseg ($PKG_VERSION) unstable; urgency=medium"
	echo
	echo "  * picoseg $PKG_VERSION."
	echo
	echo " -- picoseg maintainers <picoseg@users.noreply.github.com>  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >dist/build/changelog.gz

# pkg FORMAT CONFIG ARCH BINARY
pkg() {
	format=$1 config=$2 arch=$3 bin=$4
	target=dist/picoseg_${PKG_VERSION}_$arch.$format
	echo "package $target"
	case $format in
	deb) DEB_ARCH=$arch BIN=$bin "$NFPM" package --config "$config" --packager deb --target "$target" >/dev/null ;;
	ipk)
		IPK_ARCH=$arch BIN=$bin "$NFPM" package --config "$config" --packager ipk --target "$target" >/dev/null
		recompress_ipk "$target"
		;;
	esac
}

# recompress_ipk IPK: nfpm gzips an .ipk's members at the default level;
# gzip -9 makes the MIPS packages some 70 kB smaller, which is what keeps
# them within an 8 MB-flash router's budget (packagetest's maxIPK). The
# members, their order (debian-binary, control.tar.gz, data.tar.gz), owners
# and times stay as nfpm wrote them, so two builds still give the same bytes.
recompress_ipk() {
	work=$(mktemp -d)
	tar -xzf "$1" -C "$work"
	gzip -dc "$work/data.tar.gz" | gzip -9n >"$work/data.tar.gz.9"
	mv "$work/data.tar.gz.9" "$work/data.tar.gz"
	touch -d "@$SOURCE_DATE_EPOCH" "$work/data.tar.gz"
	(cd "$work" && tar --format=ustar --owner=0 --group=0 --numeric-owner --mode=0644 \
		--mtime="@$SOURCE_DATE_EPOCH" -cf - ./debian-binary ./control.tar.gz ./data.tar.gz) | gzip -9n >"$1"
	rm -rf "$work"
}

pkg deb packaging/nfpm/deb.yaml amd64 dist/bin/picoseg-linux-amd64
pkg deb packaging/nfpm/deb.yaml arm64 dist/bin/picoseg-linux-arm64
# GOARM=6: Raspberry Pi OS's armhf runs on the Pi Zero and Pi 1 (ARMv6).
pkg deb packaging/nfpm/deb.yaml armhf dist/bin/picoseg-linux-armv6

pkg ipk packaging/nfpm/ipk.yaml x86_64 dist/bin/picoseg-linux-amd64
pkg ipk packaging/nfpm/ipk.yaml aarch64_cortex-a53 dist/bin/picoseg-linux-arm64
pkg ipk packaging/nfpm/ipk.yaml aarch64_generic dist/bin/picoseg-linux-arm64
pkg ipk packaging/nfpm/ipk.yaml arm_cortex-a7_neon-vfpv4 dist/bin/picoseg-linux-armv7
pkg ipk packaging/nfpm/ipk.yaml mipsel_24kc dist/bin/picoseg-linux-mipsle
pkg ipk packaging/nfpm/ipk.yaml mips_24kc dist/bin/picoseg-linux-mips

(cd dist && sha256sum ./*.deb ./*.ipk | sed 's# \./# #' >SHA256SUMS)
echo "version $PKG_VERSION"
ls -l dist/*.deb dist/*.ipk
