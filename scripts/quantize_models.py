#!/usr/bin/env python3
"""The quantised face embedder: MobileFaceNet with int8 weights and activations (static QDQ,
ONNX Runtime's quantiser), made reproducibly from the shipped model and pinned by sha256 in the
manifest (`mobilefacenet_int8`, which `approximates` mobilefacenet: the same templates and
calibration).

Recipe: the shipped `mobilefacenet/MobileFaceNet.onnx` (sha256 checked) → onnxruntime's
`quant_pre_process` → `quantize_static` in QDQ format, weights int8 per output channel,
activations uint8 per tensor, with the activation ranges of `models/mobilefacenet_int8.ranges.json`
(numbers only, committed). Those ranges were measured once (`--recalibrate`) by MinMax over the
largest face of every photo of `faces-deepface` (the development photos; never the CFP or NUAA
sets the figures are reported on), detected, aligned and normalised exactly as vouch does
(`fixtures/gen/face_golden.py`'s independent pipeline: YuNet at 320 px with the small-face
refinement, Umeyama similarity onto the ArcFace template, bilinear warp, ImageNet normalisation).
Quantising with committed ranges runs no model, so the result does not depend on the CPU's
floating-point kernels: with the pinned packages of `scripts/quantize-requirements.txt` the
same inputs give the same bytes, checked against the manifest's sha256 by `scripts/setup.sh`.

Usage: python3 scripts/quantize_models.py --models DIR [--recalibrate] [--shared ../shared]
Writes DIR/mobilefacenet/MobileFaceNet.int8.onnx and prints its sha256; with --recalibrate,
measures the ranges again first and rewrites the ranges file (then pin the new sha256).
"""
import argparse
import glob
import hashlib
import os
import sys
import tempfile

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures", "gen"))
import face_golden as G  # noqa: E402  the independent reference pipeline

SOURCE = "mobilefacenet/MobileFaceNet.onnx"
SOURCE_SHA256 = "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507"
TARGET = "mobilefacenet/MobileFaceNet.int8.onnx"
RANGES = os.path.join(HERE, "..", "models", "mobilefacenet_int8.ranges.json")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def calibration_inputs(shared, models):
    yunet = G.session(os.path.join(models, "yunet/yunet_n_dynamic.onnx"))
    inputs = []
    for path in sorted(glob.glob(os.path.join(shared, "data/faces-deepface/*.jpg"))):
        img = G.load_rgb(path)
        faces = G.detect(yunet, img)
        if not faces:
            continue
        big = max(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))
        crop = G.warp112(img, np.array(big["landmarks"]))
        x = (crop.astype(np.float32) / 255.0 - G.IMAGENET_MEAN) / G.IMAGENET_STD
        inputs.append(np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32)))
    return inputs


class Reader(CalibrationDataReader):
    def __init__(self, name, inputs):
        self.items = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self.items, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, help="the model directory (read and written)")
    ap.add_argument("--recalibrate", action="store_true",
                    help="measure the activation ranges on the development faces again")
    ap.add_argument("--shared", default=os.environ.get("VOUCH_SHARED", os.path.join(HERE, "..", "..", "shared")))
    args = ap.parse_args()
    source = os.path.join(args.models, SOURCE)
    if sha256(source) != SOURCE_SHA256:
        raise SystemExit(f"{source} is not the shipped MobileFaceNet (sha256 {SOURCE_SHA256})")
    inputs = []
    if args.recalibrate:
        inputs = calibration_inputs(args.shared, args.models)
        if len(inputs) < 32:
            raise SystemExit(f"only {len(inputs)} calibration faces under {args.shared}/data/faces-deepface")
        if os.path.exists(RANGES):
            os.remove(RANGES)
    elif not os.path.exists(RANGES):
        raise SystemExit(f"no {RANGES}: run with --recalibrate")
    target = os.path.join(args.models, TARGET)
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(source, pre)
        # With the ranges file present the quantiser loads it and runs no calibration.
        quantize_static(pre, target + ".tmp", Reader("input0", inputs),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        calibration_cache_path=RANGES)
    os.replace(target + ".tmp", target)
    how = f"{len(inputs)} calibration faces" if args.recalibrate else "the committed ranges"
    print(f"{target}: {how}, sha256 {sha256(target)}")


if __name__ == "__main__":
    main()
