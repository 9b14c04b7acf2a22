#!/usr/bin/env bash
# Sets up what the tests need (idempotent) and runs them: ONNX Runtime, and a private
# PostgreSQL server on loopback (installed from Debian if missing, stopped afterwards). Tests
# that need the real models and data find them in $VOUCH_SHARED (default ../shared) and skip,
# saying why, when absent. Every cargo feature is on (the capture devices too).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime-only
export VOUCH_ORT_LIB=${VOUCH_ORT_LIB:-$(pwd)/.vouch/lib/libonnxruntime.so}
scripts/postgres.sh install
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop' EXIT
# With every feature, so the capture devices (cameras, microphones) are built and tested too;
# with none present they must fail quickly with a clear error.
cargo test --all-targets --all-features "$@"
cargo test --doc --all-features "$@"
