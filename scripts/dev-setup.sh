#!/bin/bash
# Creates a development set-up in DIR (default ./dev): a config for the
# domain localhost on 127.0.0.1:5222 (STARTTLS) and :5223 (direct TLS), a
# SQLite data dir and a self-signed certificate. The seal key is made by
# roostd at first start. Existing files are kept.
set -euo pipefail

dir=${1:-dev}
mkdir -p "$dir/data/certs"
chmod 700 "$dir/data"
dir=$(cd "$dir" && pwd)

if [ ! -f "$dir/data/certs/localhost.crt" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 3650 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$dir/data/certs/localhost.key" \
		-out "$dir/data/certs/localhost.crt" 2>/dev/null
	chmod 600 "$dir/data/certs/localhost.key"
fi

if [ ! -f "$dir/roost.conf" ]; then
	cat >"$dir/roost.conf" <<CONF
# Development configuration made by scripts/dev-setup.sh.
# See etc/roost.conf.example for every setting.
[server]
data_dir = $dir/data
log_level = info
# A development set-up runs as whoever set it up. roostd refuses to keep
# running as root unless allow_root is true: never set it in production
# (see etc/roost.conf.example and etc/roostd.service).
user = $(id -un)
allow_root = true

[c2s]
listen = 127.0.0.1:5222
tls_listen = 127.0.0.1:5223

[host localhost]
certificate = $dir/data/certs/localhost.crt
key = $dir/data/certs/localhost.key
CONF
fi
# Set-ups made before roostd refused root (issue 6) lack the keys above.
if ! grep -q '^allow_root' "$dir/roost.conf"; then
	sed -i "s|^\[server\]\$|[server]\nuser = $(id -un)\nallow_root = true|" "$dir/roost.conf"
fi
echo "$dir/roost.conf"
