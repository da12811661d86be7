#!/usr/bin/env bash
# Build (or find in the cache) the KASAN/lockdep/kmemleak kernel from
# Debian's linux-source-6.1 and vm/debug/debug.config.
# Prints the build tree's path on stdout; progress and the log path go to stderr.
# Cache: $LVN_DEBUG_CACHE (default /var/cache/lvn-debug-kernel), keyed by the
# hash of the fragment, this script and the source package version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${LVN_DEBUG_CACHE:-/var/cache/lvn-debug-kernel}
tarball=/usr/src/linux-source-6.1.tar.xz
[ -e "$tarball" ] || { echo "build-kernel: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { cat "$here/debug.config" "$here/build-kernel.sh"; echo "$srcver"; } | sha256sum | cut -c1-16)
tree=$cache/$key/linux
if [ -e "$cache/$key/done" ]; then
	echo "build-kernel: cached debug kernel $key" >&2
	echo "$tree"
	exit 0
fi
rm -rf "${cache:?}/$key"
mkdir -p "$cache/$key"
log=$cache/$key/build.log
echo "build-kernel: building debug kernel $key (source $srcver), log: $log" >&2
echo "build-kernel: this takes about 25 minutes on 2 cores" >&2
start=$(date +%s)
tar -xaf "$tarball" -C "$cache/$key"
mv "$cache/$key/linux-source-6.1" "$tree"
cd "$tree"
fail() {
	tail -n 40 "$log" >&2
	echo "build-kernel: FAILED ($1); full log: $log" >&2
	exit 1
}
{
	make x86_64_defconfig
	make kvm_guest.config
	scripts/kconfig/merge_config.sh -m .config "$here/debug.config"
	make olddefconfig
} >"$log" 2>&1 || fail "configuration"
# Every option the fragment asks for must have survived olddefconfig.
missing=0
while read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qx "$line" .config || { echo "build-kernel: not set: $line" >&2; missing=1; } ;;
	esac
done <"$here/debug.config"
[ "$missing" = 0 ] || fail "options missing from .config (see above)"
./scripts/config --set-str LOCALVERSION "-lvn-debug" --disable LOCALVERSION_AUTO
make olddefconfig >>"$log" 2>&1
(
	while sleep 60; do
		echo "build-kernel: $(( ($(date +%s) - start) / 60 )) min, $(grep -c '^  CC' "$log") files compiled" >&2
	done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
nice make -j3 bzImage modules >>"$log" 2>&1 || fail "compilation"
touch "$cache/$key/done"
echo "build-kernel: done in $(( ($(date +%s) - start) / 60 )) min" >&2
echo "$tree"
