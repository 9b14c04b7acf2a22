#!/usr/bin/env bash
# Builds vouchd (release), starts it in a temporary folder on the real models, listening on a
# Unix socket and on mutual TLS (a test PKI from scripts/test-certs.sh, terminal till-1 allowed
# what the load calls), runs scripts/load.py against it, stops it with SIGTERM and removes the
# folder.
#   scripts/load.sh [load.py options, e.g. --clients 32 --duration 20 --method get-subject]
#   scripts/load.sh --transport tls --duration 6m --samples-csv tls.csv   # a soak over mTLS
# Environment:
#   VOUCH_SHARED    folder holding data/ (default: ../shared beside the checkout)
#   VOUCH_MODEL_DIR the models (default: .vouch/models, which scripts/setup.sh fills)
#   VOUCH_ORT_LIB   libonnxruntime.so (default: .vouch/lib/libonnxruntime.so, which
#                   `scripts/setup.sh --runtime-only` fetches)
#   VOUCHD_WORKERS  inference workers (default: the number of cores)
#   VOUCHD_MAX_IN_FLIGHT  the daemon's queue bound (default 64)
#   VOUCH_PYTHON    the Python that runs load.py (default python3; needs grpcio, grpcio-tools)
#   VOUCH_LOAD_FLEET_URL  a PostgreSQL fleet store: the daemon is then a fleet terminal
#                   verifying from its replica (default: a standalone store)
#   CARGO_TARGET_DIR  where cargo builds (default target/)
# A measurement, not a test: it prints figures and fails only when something does not run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=${VOUCH_SHARED:-$ROOT/../shared}
export VOUCH_SHARED=$SHARED
ORT_LIB=${VOUCH_ORT_LIB:-$ROOT/.vouch/lib/libonnxruntime.so}
MODELS=${VOUCH_MODEL_DIR:-$ROOT/.vouch/models}
WORKERS=${VOUCHD_WORKERS:-$(nproc)}
MAX_IN_FLIGHT=${VOUCHD_MAX_IN_FLIGHT:-64}
PYTHON=${VOUCH_PYTHON:-python3}
BIN=${CARGO_TARGET_DIR:-target}/release

say() { printf '\033[1m[load]\033[0m %s\n' "$*" >&2; }

[ -d "$MODELS" ] || { echo "no models in $MODELS: run scripts/setup.sh or set VOUCH_MODEL_DIR" >&2; exit 1; }
[ -f "$ORT_LIB" ] || {
  echo "no ONNX Runtime at $ORT_LIB: run scripts/setup.sh --runtime-only or set VOUCH_ORT_LIB" >&2
  exit 1
}
"$PYTHON" -c 'import grpc, grpc_tools' 2>/dev/null || {
  echo "$PYTHON needs grpcio and grpcio-tools (scripts/setup.sh --runtime-only installs them)" >&2
  exit 1
}

say "building vouchd and vouch (release)"
cargo build --release --quiet --bin vouchd --bin vouch

dir=$(mktemp -d "${TMPDIR:-/tmp}/vouch-load.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/test-certs.sh "$dir/certs"
"$BIN/vouch" receipt keygen --out "$dir/receipt.key" >/dev/null
cat >"$dir/vouchd.toml" <<EOF
[daemon]
unix_socket = "$dir/vouchd.sock"
metrics_listen = "127.0.0.1:0"
workers = $WORKERS
max_in_flight = $MAX_IN_FLIGHT
[daemon.tcp]
listen = "127.0.0.1:0"
cert = "$dir/certs/server.pem"
key = "$dir/certs/server.key"
client_ca = "$dir/certs/ca.pem"
[daemon.terminals.till-1]
methods = ["Enroll", "Verify", "DeleteSubject", "GetSubject", "GetReceiptKey"]
[runtime]
library = "$ORT_LIB"
[models]
dir = "$MODELS"
[store]
sqlite = "$dir/templates.db"
[keys]
env = "VOUCHD_LOAD_KEK"
[decisions]
receipt_key = "$dir/receipt.key"
audit_log = "$dir/audit.log"
policy = "$dir/policy.toml"
EOF
if [ -n "${VOUCH_LOAD_FLEET_URL:-}" ]; then
  cat >>"$dir/vouchd.toml" <<EOF
[daemon.fleet]
postgres_url = "$VOUCH_LOAD_FLEET_URL"
EOF
  sed -i "s/^\[daemon\]$/[daemon]\norigin = \"load-$$\"/" "$dir/vouchd.toml"
fi
# The built-in tiers without the velocity rules: the clients repeat one customer's payment,
# which the rules would step up to the passphrase after five; this measures the decision path.
sed '/^\[\[velocity\]\]/,$d' policy/default.toml >"$dir/policy.toml"

# A throwaway template key for a throwaway store: ID:HEX (32 random bytes).
VOUCHD_LOAD_KEK="load:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export VOUCHD_LOAD_KEK
# VOUCH_KEK would take over the key source; this daemon must use only its own.
unset VOUCH_KEK

say "starting vouchd ($WORKERS workers, max_in_flight $MAX_IN_FLIGHT) in $dir"
VOUCH_LOG=${VOUCH_LOG:-warn} "$BIN/vouchd" --config "$dir/vouchd.toml" >"$dir/stdout" &
pid=$!
# Its first line on stdout says where it listens (the models load first: allow two minutes).
line=""
for _ in $(seq 1200); do
  line=$(head -n 1 "$dir/stdout")
  [ -n "$line" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
case "$line" in
  "vouchd ready "*) say "$line (pid $pid)" ;;
  *) echo "vouchd did not start${line:+: $line} (see its errors above)" >&2; exit 1 ;;
esac
field() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# load.py picks the transport (--transport, unix by default); it gets both addresses.
status=0
"$PYTHON" scripts/load.py --socket "$(field unix)" --tcp "$(field tcp)" --certs "$dir/certs" \
  --pid "$pid" --metrics "$(field metrics)" "$@" || status=$?

say "stopping vouchd (SIGTERM)"
kill -TERM "$pid" 2>/dev/null || true
if wait "$pid"; then
  say "vouchd exited cleanly"
else
  code=$?
  say "vouchd exited with status $code"
  [ "$status" -ne 0 ] || status=$code
fi
pid=""
exit "$status"
