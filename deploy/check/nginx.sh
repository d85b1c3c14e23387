#!/bin/bash
# nginx -t on deploy/nginx/aidocs.conf with a throwaway self-signed certificate.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/tls" "$t/logs"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=aidocs.test -keyout "$t/tls/aidocs.key" -out "$t/tls/aidocs.crt" 2>/dev/null
# The upstream host only resolves inside the compose network; the check points it at localhost.
sed -e "s#/etc/nginx/tls/#$t/tls/#g" -e 's#server aidocs:8000#server 127.0.0.1:8000#' "$root/deploy/nginx/aidocs.conf" > "$t/aidocs.conf"
cat > "$t/nginx.conf" <<CONF
pid $t/nginx.pid;
error_log $t/logs/error.log;
events {}
http {
    access_log $t/logs/access.log;
    include $t/aidocs.conf;
}
CONF
nginx -t -p "$t" -c "$t/nginx.conf"
