#!/bin/bash
# Installs what is missing, builds, creates ./dev (localhost, SQLite, a
# self-signed certificate) and runs roostd in the foreground.
# Add users from another shell:  ./build/tools/roostctl -c dev/roost.conf adduser alice@localhost
set -euo pipefail
cd "$(dirname "$0")"

bash scripts/install-deps.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
conf=$(bash scripts/dev-setup.sh dev)
echo "roostd: config $conf; add users with: ./build/tools/roostctl -c $conf adduser alice@localhost"
exec ./build/src/roostd -c "$conf"
