#!/usr/bin/env bash
# The spoken-passphrase figures on speakers the digit head never saw: FSDD features, the
# synthetic espeak-ng digits, one digit head per held-out FSDD speaker
# (scripts/train_digit_head.py --held-out-heads), the pinned GMM-UBM (scripts/setup.sh trains it),
# then `vouch eval passphrase`
# with the voice encoder alone and fused with the GMM-UBM, for one and two enrollment
# sequences. Reports under $OUT (default reports/passphrase-held-out); work files in $WORK
# (default /var/tmp/vouch-passphrase). About 15 minutes on 2 cores.
#
# Needs: apt install espeak-ng; pip install numpy scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VOUCH_SHARED:-$(pwd)/../shared}
DATA=$SHARED/data
OUT=${OUT:-reports/passphrase-held-out}
WORK=${WORK:-/var/tmp/vouch-passphrase}
[ -d "$DATA/fsdd/recordings" ] || { echo "no FSDD at $DATA/fsdd (set VOUCH_SHARED)" >&2; exit 1; }
scripts/setup.sh --runtime-only >/dev/null
export VOUCH_ORT_LIB=${VOUCH_ORT_LIB:-$(pwd)/.vouch/lib/libonnxruntime.so}
export VOUCH_MODEL_DIR=${VOUCH_MODEL_DIR:-$(pwd)/.vouch/models}
export VOUCH_UBM=${VOUCH_UBM:-$(pwd)/.vouch/models/gmm-ubm.vubm}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --features eval --bin vouch --example digit_features
mkdir -p "$WORK" "$OUT"

[ -f "$WORK/fsdd.csv" ] || "$TARGET/release/examples/digit_features" \
  "$DATA/fsdd/recordings" "$WORK/fsdd.csv" --pad 0.4 --whole
if [ ! -f "$WORK/synth.csv" ]; then
  [ -d "$WORK/synth" ] || python3 scripts/synth_digits.py "$WORK/synth"
  "$TARGET/release/examples/digit_features" "$WORK/synth" "$WORK/synth.csv" --pad 0.4 --whole
fi
python3 scripts/train_digit_head.py --real "$WORK/fsdd.csv" --synthetic "$WORK/synth.csv" \
  --report "$WORK/loso.json" --held-out-heads "$WORK/heads"

for takes in 1 2; do
  printf '\n\033[1m== encoder, %s enrollment sequence(s)\033[0m\n' "$takes"
  "$TARGET/release/vouch" eval passphrase "$DATA/fsdd/recordings" --heads "$WORK/heads" \
    --enroll-takes "$takes" --out "$OUT/encoder-$takes"
  printf '\n\033[1m== encoder + GMM-UBM, %s enrollment sequence(s)\033[0m\n' "$takes"
  "$TARGET/release/vouch" eval passphrase "$DATA/fsdd/recordings" --heads "$WORK/heads" \
    --enroll-takes "$takes" --model encoder --model gmm \
    --out "$OUT/fused-$takes"
done
printf '\nreports in %s/\n' "$OUT"
