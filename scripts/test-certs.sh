#!/usr/bin/env bash
# Test PKI for vouchd's mutual TLS (tests only; never for production):
#   scripts/test-certs.sh DIR
# DIR/ca.pem                      the terminal CA (also signs the server certificate)
# DIR/server.pem, server.key      CN=localhost, SAN localhost + 127.0.0.1
# DIR/till-1.pem, till-1.key      a terminal allowed to call everything
# DIR/till-2.pem, till-2.key      a terminal allowed only GetReceiptKey
# DIR/rogue-ca.pem, rogue.pem, rogue.key   a CA the daemon does not trust, and a client cert
#                                           from it named till-1
set -euo pipefail
dir=${1:?usage: scripts/test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
ca() { # name cn
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
leaf() { # name cn ca ext
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "vouch test terminal CA"
ca rogue-ca "someone else's CA"
leaf server localhost ca "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
for t in till-1 till-2; do leaf "$t" "$t" ca "extendedKeyUsage=clientAuth"; done
leaf rogue till-1 rogue-ca "extendedKeyUsage=clientAuth"
chmod 644 ./*.pem
