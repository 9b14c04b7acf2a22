#!/usr/bin/env bash
# A fleet through an outage, end to end (examples/fleet_demo.rs): a private PostgreSQL fleet
# store, two vouchd terminals with their own replicas, and a client driving them over their
# Unix sockets. Enroll on A, verify on B; PostgreSQL stopped: verify on B below and above the
# offline ceiling, enroll on A, delete on B; PostgreSQL back: both replicas converge on the
# fleet store, the velocity rule counts payments made on both terminals, a lockout survives a
# daemon restart and holds on the other terminal. Exits non-zero at the first difference; the
# last line counts the checks.
#
#   scripts/fleet-demo.sh            (idempotent; sets the machine up first)
#
# The server's data and the terminals' folders live under $VOUCH_FLEET_DEMO_DIR (default
# /var/tmp/vouch-fleet-demo), replaced on each run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime-only
scripts/postgres.sh install

WORK=${VOUCH_FLEET_DEMO_DIR:-/var/tmp/vouch-fleet-demo}
SHARED=${VOUCH_SHARED:-$(pwd)/../shared}
export VOUCH_TEST_POSTGRES_DATA="$WORK/postgres"
export VOUCH_TEST_POSTGRES_PORT=${VOUCH_FLEET_DEMO_PG_PORT:-54341}
scripts/postgres.sh stop
rm -rf "$WORK"
mkdir -p "$WORK"
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop' EXIT

# The fleet store: the private server's own database (a fresh server each run).
FLEET_URL="host=127.0.0.1 port=$VOUCH_TEST_POSTGRES_PORT user=vouch dbname=postgres"

cargo build --release --quiet --bin vouchd --example fleet_demo
TARGET=${CARGO_TARGET_DIR:-target}
"$TARGET/release/examples/fleet_demo" \
  --vouchd "$TARGET/release/vouchd" \
  --work "$WORK/terminals" \
  --postgres-url "$FLEET_URL" \
  --postgres-stop "VOUCH_TEST_POSTGRES_DATA='$VOUCH_TEST_POSTGRES_DATA' VOUCH_TEST_POSTGRES_PORT=$VOUCH_TEST_POSTGRES_PORT scripts/postgres.sh stop" \
  --postgres-start "VOUCH_TEST_POSTGRES_DATA='$VOUCH_TEST_POSTGRES_DATA' VOUCH_TEST_POSTGRES_PORT=$VOUCH_TEST_POSTGRES_PORT scripts/postgres.sh start >/dev/null" \
  --ort-lib "${VOUCH_ORT_LIB:-$(pwd)/.vouch/lib/libonnxruntime.so}" \
  --models "$(pwd)/.vouch/models" \
  --ubm "${VOUCH_UBM:-$(pwd)/.vouch/models/gmm-ubm.vubm}" \
  --faces "$SHARED/data/faces-deepface"
