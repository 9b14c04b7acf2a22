#!/usr/bin/env bash
# Runs every evaluation on the development data in ../shared/data and writes one report
# folder per run (report.json, report.md, det.png, det.svg, scores.csv; face runs also
# pairs.csv and images.csv) under $OUT (default: reports/). Release build; embeddings cached
# in .vouch/cache (per image and model), so a second run re-scores in seconds.
#
#   scripts/eval-dev.sh                 # everything (~15 min on 2 cores)
#   OUT=/tmp/r scripts/eval-dev.sh face # only the runs whose name starts with "face"
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VOUCH_SHARED:-$(pwd)/../shared}
DATA=$SHARED/data
OUT=${OUT:-reports}
ONLY=${1:-}
[ -d "$DATA" ] || { echo "no data at $DATA (set VOUCH_SHARED)" >&2; exit 1; }
scripts/setup.sh >/dev/null
export VOUCH_ORT_LIB=${VOUCH_ORT_LIB:-$(pwd)/.vouch/lib/libonnxruntime.so}
export VOUCH_MODEL_DIR=${VOUCH_MODEL_DIR:-$(pwd)/.vouch/models}
cargo build --release --quiet --bin vouch
VOUCH=${CARGO_TARGET_DIR:-target}/release/vouch
mkdir -p "$OUT"

run() {
  local name=$1; shift
  [[ -z "$ONLY" || "$name" == "$ONLY"* ]] || return 0
  printf '\n\033[1m== %s\033[0m\n' "$name"
  "$VOUCH" "$@" --out "$OUT/$name"
}

# A folder per identity, built from the identity clusters of the deepface photos (symlinks).
identities=$(mktemp -d)
trap 'rm -rf "$identities"' EXIT
tail -n +2 "$DATA/faces-deepface/identities_derived.csv" | while IFS=, read -r file id _; do
  mkdir -p "$identities/$id"
  ln -s "$DATA/faces-deepface/$file" "$identities/$id/$file"
done

run face-deepface eval face --pairs "$DATA/faces-deepface/master.csv" \
  --pairs "$DATA/faces-deepface/face-recognition-pivot.csv"
run face-identities eval face --identities "$identities"
# CFP: every pair of 100 identities, frontal–frontal (payment-like) and frontal–profile (hard)
# apart; two face models at a time and their fusion, cross-validated over identities (the
# README's table). Evaluation data: nothing is tuned on it.
cfp="$DATA/faces-cfp-dev"
for pairs in frontal-frontal frontal-profile; do
  for models in mobilefacenet_int8,sface mobilefacenet,sface mobilefacenet_int8,sface_int8; do
    run "face-cfp-$pairs-${models//,/+}" eval face --identities "$cfp" --pairs-of "$pairs" \
      --max-impostors 1000000 --face-models "$models"
  done
done
run liveness-nuaa eval liveness --whole-image \
  --bona-fide "$DATA/liveness-nuaa-train/ClientFace" \
  --attack print="$DATA/liveness-nuaa-train/ImposterFace"
run liveness-samples eval liveness --bona-fide "$DATA/liveness-samples/image_T1.jpg" \
  --bona-fide "$DATA/liveness-samples/image_T2.jpg" \
  --attack print="$DATA/liveness-samples/image_F1.jpg" \
  --attack replay="$DATA/liveness-samples/image_F2.jpg"
# Active liveness: challenge sessions built from the development photos and videos
# (synthetic, every session says so; ffmpeg cuts the video windows).
if [[ -z "$ONLY" || "liveness-challenges" == "$ONLY"* ]]; then
  sessions=$(mktemp -d)/sessions
  cargo run --release --quiet --features eval --example make_challenge_sessions -- \
    --shared "$SHARED" --out "$sessions"
  run liveness-challenges eval liveness --sessions "$sessions"
  rm -rf "$(dirname "$sessions")"
fi
run voice-librispeech eval voice "$DATA/librispeech/test-other" --model encoder
# The built-in digit head saw every FSDD speaker: held-out figures come from
# scripts/passphrase-held-out.sh.
run passphrase-fsdd eval passphrase "$DATA/fsdd/recordings"
printf '\nreports in %s/\n' "$OUT"
