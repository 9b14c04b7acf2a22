#!/usr/bin/env bash
# Sets up what the tests need (idempotent) and runs them: ONNX Runtime, and a private
# PostgreSQL server on loopback (installed from Debian if missing, stopped afterwards). Tests
# that need the real models and data find them in $VOUCH_SHARED (default ../shared) and skip,
# saying why, when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime-only
export VOUCH_ORT_LIB=${VOUCH_ORT_LIB:-$(pwd)/.vouch/lib/libonnxruntime.so}
scripts/postgres.sh install
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop' EXIT
cargo test --all-targets "$@"
cargo test --doc "$@"
