#!/bin/sh
# gen.sh - turn a man page source (man/*.in, roff) into the page: @VERSION@
# becomes the version, and each line "@HELP COMMAND...@" becomes that
# command's entry, made from what `poise COMMAND --help` prints (its usage
# line in bold, its help text as the paragraph), so a page and --help can
# never say different things.
# Usage: gen.sh POISE_BINARY VERSION <PAGE.in >PAGE
set -eu
POISE=$1
VERSION=$2

# roff-escape stdin: backslashes, minus signs, a leading dot or quote
esc() {
	sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

while IFS= read -r line; do
	case $line in
	@HELP\ *@)
		cmd=${line#@HELP }
		cmd=${cmd%@}
		# shellcheck disable=SC2086 # the command's words
		out=$("$POISE" $cmd --help) || {
			echo "gen.sh: poise $cmd --help failed" >&2
			exit 1
		}
		echo ".TP"
		printf '%s\n' "$out" | sed -n '1s/^usage: //p' | esc | sed 's/^/.B /'
		# the help text: blank lines start a new indented paragraph
		printf '%s\n' "$out" | sed '1,2d' | esc | sed 's/^$/.IP/'
		;;
	*)
		printf '%s\n' "$line" | sed "s/@VERSION@/$VERSION/g"
		;;
	esac
done
