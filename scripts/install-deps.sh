#!/bin/bash
# Installs the Debian 12 packages roost needs to build, run and test.
# Idempotent: apt runs only when something is missing.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build
	libevent-dev libssl-dev libexpat1-dev libidn-dev libsqlite3-dev
	libinih-dev libcmocka-dev
	openssl sqlite3 python3 python3-pytest python3-slixmpp
	# libFuzzer and its sanitizer runtimes (scripts/fuzz.sh), valgrind
	# (scripts/valgrind-suite.sh)
	clang libclang-rt-14-dev valgrind
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "run as root (or install these packages first)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
