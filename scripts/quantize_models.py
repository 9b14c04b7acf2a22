#!/usr/bin/env python3
"""The quantised face embedders: MobileFaceNet and SFace with int8 weights and activations
(static QDQ, ONNX Runtime's quantiser), made reproducibly from the shipped models and pinned by
sha256 in the manifest (`mobilefacenet_int8`, `sface_int8`, each of which `approximates` its
float model: the same templates and calibration).

One recipe for both: the shipped file (sha256 checked) → its preparation, if it needs one →
onnxruntime's `quant_pre_process` → `quantize_static` in QDQ format, weights int8 per output
channel, activations uint8 per tensor, with the activation ranges of `models/<name>_int8.ranges.json`
(numbers only, committed). Those ranges were measured once (`--recalibrate`) over the largest
face of every photo of `faces-deepface` (the development photos; never the CFP or NUAA sets the
figures are reported on), detected, aligned and scaled exactly as vouch does
(`fixtures/gen/face_golden.py`'s independent pipeline: YuNet at 320 px with the small-face
refinement, Umeyama similarity onto the ArcFace template, bilinear warp, then the model's own
input scaling). Quantising with committed ranges runs no model, so the result does not depend on
the CPU's floating-point kernels: with the pinned packages of `scripts/quantize-requirements.txt`
the same inputs give the same bytes, checked against the manifest's sha256 by `scripts/setup.sh`.

The models differ where measurement said they should (choices made on faces-deepface alone:
calibrated on one half of its faces, compared with the float model on the other half, both ways
round):
- MobileFaceNet: every operator quantised, ranges by MinMax.
- SFace (raw RGB 0..255; the graph normalises inside) is first prepared with the `onnx` package
  as vouch prepares the float model at load (`[model.derive]` in models/default.toml): its
  weights are graph inputs no more, its 27 `PRelu` are computed as `Relu`, `Sub`, `Mul` and
  `Add`; it is raised from opset 11 to 13, the first with per-channel `DequantizeLinear`; and
  its channels are equalised (`equalise`) with the channel ranges kept in its ranges file.
  Only its convolutions and its final `Gemm` are quantised: ONNX Runtime has no int8 `PRelu`
  and its float `PRelu` kernel is slow (25 ms a face with `PRelu` kept, 10 ms rewritten, one
  thread, Python), and quantising the rewrite's element-wise operators too made it slower (12.6 ms)
  and no closer to the float model. Activation ranges at the 99.995th percentile, not MinMax
  (before equalisation, mean cosine to the float model 0.982 / 0.985 with MinMax, worst 0.966;
  0.993 / 0.994 with the percentile, worst 0.984). No layer stood out: leaving any one
  convolution or the `Gemm` in float took at most 15 % off the error (the second convolution;
  the first 10 %), for a layer's cost in speed; equalisation took half.

Usage: python3 scripts/quantize_models.py --models DIR [--model NAME ...] [--recalibrate]
           [--shared ../shared]
Writes each model's int8 file under DIR (all of them by default) and prints its sha256; with
--recalibrate, measures that model's ranges again first and rewrites its ranges file (then pin
the new sha256).
"""
import argparse
import contextlib
import glob
import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime
from onnx import helper, version_converter
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures", "gen"))
import face_golden as G  # noqa: E402  the independent reference pipeline


def initializers_not_inputs(model):
    """Drops the graph inputs that are initializers too (an MXNet export lists every weight as
    an input, which keeps ONNX Runtime from folding them); vouch's recipe of the same name."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)


def prelu_as_relu(model):
    """Every `PRelu(x, slope)` as `r + slope · (x − r)` with `r = Relu(x)`: the same values, from
    operators ONNX Runtime runs fast; vouch's recipe of the same name."""
    nodes = []
    for i, node in enumerate(n for n in model.graph.node if n.op_type == "PRelu"):
        (x, slope), (y,) = node.input, node.output
        base = f"{y}__prelu{i}"
        r, d, m = f"{base}_relu", f"{base}_neg", f"{base}_scaled"
        nodes.append([helper.make_node("Relu", [x], [r], name=f"{base}_Relu"),
                      helper.make_node("Sub", [x, r], [d], name=f"{base}_Sub"),
                      helper.make_node("Mul", [d, slope], [m], name=f"{base}_Mul"),
                      helper.make_node("Add", [r, m], [y], name=f"{base}_Add")])
    rewritten = iter(nodes)
    graph = []
    for node in model.graph.node:
        graph.extend(next(rewritten) if node.op_type == "PRelu" else [node])
    del model.graph.node[:]
    model.graph.node.extend(graph)


def prepare_sface(model):
    initializers_not_inputs(model)
    prelu_as_relu(model)
    return version_converter.convert_version(model, 13)


def chain(model):
    """The (BatchNormalization, next Conv) pairs of a plain chain of Conv → BatchNormalization →
    PRelu (as rewritten by `prelu_as_relu`) → Conv, in order; refuses any other graph."""
    producer = {o: n for n in model.graph.node for o in n.output}
    batchnorm = {n.input[0]: n for n in model.graph.node if n.op_type == "BatchNormalization"}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    pairs = []
    for conv, following in zip(convs, convs[1:]):
        bn, add = batchnorm.get(conv.output[0]), producer.get(following.input[0])
        relu = producer.get(add.input[0]) if add is not None and add.op_type == "Add" else None
        if bn is None or relu is None or relu.op_type != "Relu" or relu.input[0] != bn.output[0]:
            raise SystemExit(f"{conv.name} → {following.name} is not Conv → BatchNormalization → PRelu → Conv")
        pairs.append((bn, following))
    return pairs


def channel_ranges(model, inputs):
    """For every equalised tensor (the batch-normalised output of each convolution but the last),
    the value 99.99 % of each channel's magnitudes stay below over `inputs` (the largest one in
    10,000 is left out: one pixel's outlier should not set a channel's scale)."""
    names = [bn.output[0] for bn, _ in chain(model)]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    run = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    tops = {name: [] for name in names}
    for x in inputs:  # one face at a time: all the activations of 64 faces take gigabytes
        for name, out in zip(names, run.run(names, {model.graph.input[0].name: x})):
            magnitudes = np.abs(out[0]).reshape(out.shape[1], -1)
            k = -(-len(inputs) * magnitudes.shape[1] // 10_000)  # ceil(n / 10^4) of n values
            tops[name].append(np.partition(magnitudes, -k, axis=1)[:, -k:])
    ranges = {}
    for name, top in tops.items():
        top = np.concatenate(top, axis=1)
        k = top.shape[1] // len(inputs)
        ranges[name] = [float(f"{v:.4g}") for v in np.partition(top, -k, axis=1)[:, -k]]
    return ranges


def equalise(model, ranges):
    """Cross-layer equalisation: each channel c of a convolution's batch-normalised output is
    divided by s_c and the next convolution's weights for that channel multiplied by it. PRelu
    commutes with a positive scale, so the graph computes the same function; but activations
    are quantised per tensor, and the median channel of an SFace tensor spans half the range of
    the largest (a third to a ninth for the smallest), so it used half the levels or fewer.
    s_c = (r_c / max r)^a of the channel ranges
    r: a = 1 (every channel at the same range) before a depthwise convolution, whose weights are
    quantised per channel anyway; a = 0.75 before a pointwise one, whose weight rows each channel
    scales too. Measured like the percentile (mean 1 − cosine to the float model on the held-out
    halves of faces-deepface): 0.0063 unequalised; 0.0038 / 0.0034 / 0.0030 / 0.0032 at
    a = 0.25 / 0.5 / 0.75 / 1 before pointwise convolutions."""
    weights = {t.name: t for t in model.graph.initializer}

    def rescale(name, by):
        array = onnx.numpy_helper.to_array(weights[name]).astype(np.float64) * by
        weights[name].CopyFrom(onnx.numpy_helper.from_array(array.astype(np.float32), name))

    for bn, following in chain(model):
        r = np.array(ranges[bn.output[0]], dtype=np.float64)
        depthwise = any(a.name == "group" and a.i > 1 for a in following.attribute)
        s = np.maximum(r / r.max(), 1e-3) ** (1.0 if depthwise else 0.75)
        rescale(bn.input[1], 1.0 / s)  # gamma
        rescale(bn.input[2], 1.0 / s)  # beta
        rescale(following.input[1], s[:, None, None, None] if depthwise else s[None, :, None, None])
    return model


@dataclass
class Embedder:
    name: str
    source: str
    source_sha256: str
    target: str
    input_name: str
    imagenet: bool  # ImageNet-normalised /255 input, else raw 0..255
    calibration: CalibrationMethod
    prepare: object = None  # onnx.ModelProto -> onnx.ModelProto, before quant_pre_process
    equalised: bool = False  # cross-layer equalisation of the prepared graph (see `equalise`)
    op_types: list = None  # the operators quantised; None: every one the quantiser knows
    extra_options: dict = field(default_factory=dict)

    @property
    def ranges(self):
        return os.path.join(HERE, "..", "models", f"{self.name}_int8.ranges.json")


EMBEDDERS = [
    Embedder("mobilefacenet", "mobilefacenet/MobileFaceNet.onnx",
             "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507",
             "mobilefacenet/MobileFaceNet.int8.onnx", "input0", imagenet=True,
             calibration=CalibrationMethod.MinMax),
    Embedder("sface", "sface/face_recognition_sface_2021dec.onnx",
             "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
             "sface/face_recognition_sface_2021dec.int8.onnx", "data", imagenet=False,
             calibration=CalibrationMethod.Percentile, prepare=prepare_sface, equalised=True,
             op_types=["Conv", "Gemm"], extra_options={"CalibPercentile": 99.995}),
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def aligned_faces(shared, models):
    """The aligned 112×112 RGB crop of the largest face of every development photo."""
    yunet = G.session(os.path.join(models, "yunet/yunet_n_dynamic.onnx"))
    crops = []
    for path in sorted(glob.glob(os.path.join(shared, "data/faces-deepface/*.jpg"))):
        img = G.load_rgb(path)
        faces = G.detect(yunet, img)
        if not faces:
            continue
        big = max(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))
        crops.append(G.warp112(img, np.array(big["landmarks"])))
    return crops


def model_input(embedder, crop):
    x = crop.astype(np.float32)
    if embedder.imagenet:
        x = (x / 255.0 - G.IMAGENET_MEAN) / G.IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


class Reader(CalibrationDataReader):
    def __init__(self, name, inputs):
        self.items = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self.items, None)


def quantise(embedder, models, crops):
    """Writes the embedder's int8 file, calibrating first when `crops` are given."""
    source = os.path.join(models, embedder.source)
    if sha256(source) != embedder.source_sha256:
        raise SystemExit(f"{source} is not the shipped {embedder.name} (sha256 {embedder.source_sha256})")
    inputs = [model_input(embedder, c) for c in crops]
    if crops and os.path.exists(embedder.ranges):
        os.remove(embedder.ranges)
    elif not crops and not os.path.exists(embedder.ranges):
        raise SystemExit(f"no {embedder.ranges}: run with --recalibrate")
    target = os.path.join(models, embedder.target)
    with tempfile.TemporaryDirectory() as tmp:
        if embedder.prepare is not None:
            model = embedder.prepare(onnx.load(source))
            if embedder.equalised:
                if crops:
                    equalisation = channel_ranges(model, inputs)
                else:
                    with open(embedder.ranges) as f:
                        equalisation = json.load(f).get("channel_ranges")
                    if equalisation is None:
                        raise SystemExit(f"no channel ranges in {embedder.ranges}: run with --recalibrate")
                model = equalise(model, equalisation)
            source = os.path.join(tmp, "prepared.onnx")
            onnx.save(model, source)
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(source, pre)
        # With the ranges file present the quantiser loads it and runs no calibration. The
        # histogram calibrators print their progress on stdout, which is kept for the result.
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(pre, target + ".tmp", Reader(embedder.input_name, inputs),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=embedder.op_types,
                            calibrate_method=embedder.calibration,
                            extra_options=dict(embedder.extra_options),
                            calibration_cache_path=embedder.ranges)
    if crops and embedder.equalised:
        # The quantiser wrote the ranges of the equalised graph; the channel ranges it was
        # equalised with go in the same file (the quantiser reads only its own keys), whose keys
        # are sorted: the quantiser writes its tensors in no fixed order.
        with open(embedder.ranges) as f:
            ranges = json.load(f)
        ranges["channel_ranges"] = equalisation
        with open(embedder.ranges, "w") as f:
            json.dump(ranges, f, sort_keys=True)
    os.replace(target + ".tmp", target)
    how = f"{len(inputs)} calibration faces" if crops else "the committed ranges"
    print(f"{target}: {how}, sha256 {sha256(target)}")


def main():
    names = [e.name for e in EMBEDDERS]
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, help="the model directory (read and written)")
    ap.add_argument("--model", action="append", choices=names,
                    help="the float model to quantise (repeatable); by default, all of them")
    ap.add_argument("--recalibrate", action="store_true",
                    help="measure the activation ranges on the development faces again")
    ap.add_argument("--shared", default=os.environ.get("VOUCH_SHARED", os.path.join(HERE, "..", "..", "shared")))
    args = ap.parse_args()
    chosen = [e for e in EMBEDDERS if e.name in (args.model or names)]
    crops = []
    if args.recalibrate:
        crops = aligned_faces(args.shared, args.models)
        if len(crops) < 32:
            raise SystemExit(f"only {len(crops)} calibration faces under {args.shared}/data/faces-deepface")
    for embedder in chosen:
        quantise(embedder, args.models, crops)


if __name__ == "__main__":
    main()
