#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the demo: enroll identities from real photos and
# verify genuine and impostor probes on the default models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export VOUCH_DATA_DIR=${VOUCH_DATA_DIR:-${VOUCH_SHARED:-$(pwd)/../shared}/data}
exec cargo run --release --quiet -- demo "$@"
