#!/bin/sh
# Install the files of feed/lvn/files.list.
# Usage: install.sh SOURCE_ROOT DEST_ROOT
# A destination ending in / is a directory (the source's name is kept).
set -eu
src=$1
dest=$2
list=$(dirname "$0")/files.list
[ -d "$src" ] || { echo "install.sh: no source tree $src" >&2; exit 1; }
grep -v -e '^#' -e '^[[:space:]]*$' "$list" | while read -r mode pattern target; do
	found=0
	for f in "$src"/$pattern; do
		[ -f "$f" ] || continue
		found=1
		case $target in
		*/) dir=$dest$target; out=$dir$(basename "$f") ;;
		*) dir=$dest$(dirname "$target"); out=$dest$target ;;
		esac
		mkdir -p "$dir"
		cp "$f" "$out"
		chmod "$mode" "$out"
	done
	[ "$found" = 1 ] || { echo "install.sh: nothing matches $pattern" >&2; exit 1; }
done
