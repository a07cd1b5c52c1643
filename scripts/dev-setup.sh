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

[c2s]
listen = 127.0.0.1:5222
tls_listen = 127.0.0.1:5223

[host localhost]
certificate = $dir/data/certs/localhost.crt
key = $dir/data/certs/localhost.key
CONF
fi
echo "$dir/roost.conf"
