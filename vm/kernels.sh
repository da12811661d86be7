#!/usr/bin/env bash
# Print the kernel releases the VM stage tests: the newest installed Debian
# 6.1 and 6.12 amd64 kernels that have both an image and headers.
# Usage: vm/kernels.sh [SERIES...]   (default: 6.1 6.12)
set -euo pipefail
series=("$@")
[ ${#series[@]} -gt 0 ] || series=(6.1 6.12)
for s in "${series[@]}"; do
	rel=$(for d in /lib/modules/"$s".*-amd64; do basename "$d"; done |
		grep -E "^${s//./\\.}\.[0-9]+" | grep -v -e '-rt-' -e '-cloud-' |
		while read -r r; do
			[ -e "/boot/vmlinuz-$r" ] && [ -e "/lib/modules/$r/build/Makefile" ] && echo "$r"
		done | sort -V | tail -n 1)
	if [ -z "$rel" ]; then
		echo "vm/kernels.sh: no installed $s kernel with headers (run scripts/setup-deps.sh)" >&2
		exit 1
	fi
	echo "$rel"
done
