#!/usr/bin/env bash
# Runs vouch's fuzz targets (fuzz/, cargo-fuzz + libFuzzer on the nightly toolchain), each
# for SECONDS, seeded from the project's fixtures and, when present, samples of the shared
# data (copied into a corpus folder outside the checkout, never committed).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 3600 audio_decode
# Crashes land in fuzz/artifacts/TARGET/; reproduce with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(image_decode audio_decode template_open receipt_verify audit_lines config_parse)
SHARED=${VOUCH_SHARED:-$(pwd)/../shared}
CORPUS=${VOUCH_FUZZ_CORPUS:-/var/tmp/vouch-fuzz-corpus}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || { echo "cargo fuzz needs a nightly toolchain" >&2; exit 1; }

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

for target in "${TARGETS[@]}"; do
  echo "== $target ($SECONDS_EACH s)"
  # 2 GB RSS cap: a parser that tries to allocate from a forged header fails the run.
  cargo +nightly fuzz run "$target" "$CORPUS/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::|#[0-9]+ *DONE|==[0-9]+==|SUMMARY|Done)" || true
done
