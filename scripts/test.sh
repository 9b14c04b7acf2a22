#!/usr/bin/env bash
# Sets up what the tests need (idempotent) and runs them. Tests that need the real models and
# data find them in $VOUCH_SHARED (default ../shared) and skip, saying why, when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime-only
export VOUCH_ORT_LIB=${VOUCH_ORT_LIB:-$(pwd)/.vouch/lib/libonnxruntime.so}
exec cargo test --all-targets "$@"
