#!/usr/bin/env bash
# Runs vouch's fuzz targets (fuzz/, cargo-fuzz + libFuzzer), each for SECONDS, seeded from
# the project's fixtures and, when present, samples of the shared data (copied into a corpus
# folder outside the checkout, never committed). Fails when a target finds a crash.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 3600 audio_decode
#   VOUCH_FUZZ_TARGET_DIR=/var/tmp/fuzz-target scripts/fuzz.sh 20   # CI's smoke run
# cargo fuzz needs nightly compiler flags: the nightly toolchain when installed, else the
# stable one with RUSTC_BOOTSTRAP=1 (machines here cannot fetch another toolchain).
# Crashes land in fuzz/artifacts/TARGET/; reproduce with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(image_decode audio_decode template_open receipt_verify audit_lines config_parse grpc_request)
SHARED=${VOUCH_SHARED:-$(pwd)/../shared}
CORPUS=${VOUCH_FUZZ_CORPUS:-/var/tmp/vouch-fuzz-corpus}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list | grep -q '^nightly'; then
  TOOLCHAIN=+nightly
else
  TOOLCHAIN=+stable
  export RUSTC_BOOTSTRAP=1
fi
TARGET_DIR=()
[ -z "${VOUCH_FUZZ_TARGET_DIR:-}" ] || TARGET_DIR=(--target-dir "$VOUCH_FUZZ_TARGET_DIR")

seed() {
  local target=$1; shift
  mkdir -p "$CORPUS/$target"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$CORPUS/$target/" || true; done
}
seed image_decode "$SHARED"/data/faces-deepface/img5.jpg "$SHARED"/data/liveness-samples/image_T1.jpg \
  "$SHARED"/data/liveness-nuaa-train/ClientFace/0001/0001_00_00_01_0.jpg
seed audio_decode "$SHARED"/data/fsdd/recordings/7_theo_1.wav \
  "$SHARED"/data/librispeech/test-other/1688/1688-142285-0000.flac
seed template_open fixtures/formats/template-envelope-v1.bin
seed receipt_verify fixtures/formats/receipt-v1.txt
seed audit_lines fixtures/formats/audit-v1.jsonl
seed config_parse policy/default.toml calibration/mobilefacenet.toml
# Every input a fuzzer once failed on is replayed first, as a regression check.
for found in fixtures/fuzz/*/; do seed "$(basename "$found")" "$found"*; done

# A few hand-made requests (method byte, then the protobuf body): a Verify naming a subject,
# an Enroll with one digit recording, a Challenge with a transaction.
mkdir -p "$CORPUS/grpc_request"
printf '\x01\x0a\x05alice' >"$CORPUS/grpc_request/verify-subject"
printf '\x00\x0a\x05alice\x22\x02\x08\x03' >"$CORPUS/grpc_request/enroll-digit"
printf '\x03\x0a\x01a\x12\x0b\x18\xc2\x03\x22\x03EUR\x2a\x00' >"$CORPUS/grpc_request/challenge-tx"

failed=()
for target in "${TARGETS[@]}"; do
  echo "== $target ($SECONDS_EACH s)"
  log=$(mktemp)
  # 2 GB RSS cap: a parser that tries to allocate from a forged header fails the run.
  # cargo fuzz builds with overflow checks everywhere by default; audio_decode is built
  # without them (-O), because symphonia's FLAC LPC predictor overflows an i32 on crafted
  # frames (found 2026-11-30): release builds wrap, checked builds panic and vouch refuses the
  # file, and the fuzzer would otherwise stop there every run.
  mode=()
  [ "$target" != audio_decode ] || mode=(-O)
  if cargo "$TOOLCHAIN" fuzz run "${mode[@]}" "${TARGET_DIR[@]}" "$target" "$CORPUS/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE|Done)" "$log" || true
  else
    # The build's or the fuzzer's own words: what failed, its input and how to reproduce it
    # (not the input's Debug dump, which can run to megabytes).
    grep -E "ERROR|SUMMARY|panicked|out-of-memory|leak|^error|artifacts/|No space" "$log" | head -n 20
    tail -n 5 "$log"
    failed+=("$target")
  fi
  rm -f "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
