#!/usr/bin/env python3
"""Side-by-side speed of the face pipeline: vouch (Rust, examples/face_timing.rs) against the
independent Python reference of fixtures/gen/face_golden.py (onnxruntime + numpy + Pillow), on
the same photos and the same model files. Stages: decode, detect (downscale to 640, YuNet,
anchors, NMS), align (similarity + bilinear warp to 112x112), embed (MobileFaceNet), and end
to end (image bytes to embedding). Each side takes the median of N runs per stage per photo;
the two sides alternate photo by photo (vouch, then Python, on the same photo). Both run ONNX
Runtime with one intra-op thread per session.

Prints, per stage, the sum over the photos of the per-photo medians (the time to put the whole
set through that stage once), and the ratio Python / vouch (above 1: vouch is faster).

Usage: python3 scripts/compare_face.py [--shared ../shared] [--repeats 10] [--photos a.jpg ...]
                                       [--per-photo]
Needs: pip install -r fixtures/gen/requirements.txt; cargo (builds the timing example);
VOUCH_ORT_LIB pointing at libonnxruntime.so (vouch's side).
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "fixtures", "gen"))
import face_golden as ref  # noqa: E402  (the reference pipeline, reused as is)

STAGES = ["decode", "detect", "align", "embed", "end_to_end"]
YUNET = "yunet/yunet_n_dynamic.onnx"
MOBILEFACENET = "mobilefacenet/MobileFaceNet.onnx"


def median_ms(repeats, fn):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def largest(faces):
    return max(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))


def python_side(yunet, net, data, repeats):
    """The reference pipeline on one photo's bytes: per-stage medians and the face count."""
    img = ref.load_rgb(io.BytesIO(data))
    faces = ref.detect(yunet, img)
    if not faces:
        return {"faces": 0}
    pts = np.array(largest(faces)["landmarks"])
    crop = ref.warp112(img, pts)

    def end_to_end():
        im = ref.load_rgb(io.BytesIO(data))
        found = ref.detect(yunet, im)
        return ref.embed(net, ref.warp112(im, np.array(largest(found)["landmarks"])))

    end_to_end()  # warm, as the Rust side does
    return {
        "faces": len(faces),
        "ms": {
            "decode": median_ms(repeats, lambda: ref.load_rgb(io.BytesIO(data))),
            "detect": median_ms(repeats, lambda: ref.detect(yunet, img)),
            "align": median_ms(repeats, lambda: ref.warp112(img, pts)),
            "embed": median_ms(repeats, lambda: ref.embed(net, crop)),
            "end_to_end": median_ms(repeats, end_to_end),
        },
    }


def sha12(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get("VOUCH_SHARED", os.path.join(ROOT, "../shared")))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--photos", nargs="*", help="photo file names in faces-deepface "
                    "(default: the golden set of fixtures/gen/face_golden.py)")
    ap.add_argument("--per-photo", action="store_true", help="also print each photo's medians")
    args = ap.parse_args()
    faces_dir = os.path.join(args.shared, "data", "faces-deepface")
    models = os.path.join(args.shared, "models")
    if not os.path.isdir(faces_dir) or not os.path.isdir(models):
        print(f"skipped: no shared data or models under {args.shared}")
        return
    photos = [os.path.join(faces_dir, p) for p in (args.photos or ref.IMAGES)]

    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "face_timing"],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    env = {**os.environ, "REPEATS": str(args.repeats), "VOUCH_MODEL_DIR": models,
           "VOUCH_INTRA_THREADS": "1"}
    rust = subprocess.Popen([os.path.join(target, "release/examples/face_timing")], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(rust.stdout.readline())
    yunet = ref.session(os.path.join(models, YUNET))
    net = ref.session(os.path.join(models, MOBILEFACENET))
    ids = (f"yunet_n@{sha12(os.path.join(models, YUNET))}",
           f"mobilefacenet@{sha12(os.path.join(models, MOBILEFACENET))}")
    if ids != (ready["detector"], ready["embedder"]):
        sys.exit(f"the two sides use different models: vouch {ready['detector']}, "
                 f"{ready['embedder']}; Python {ids[0]}, {ids[1]}")

    results = []
    for path in photos:  # alternate: one photo through vouch, then the same photo in Python
        rust.stdin.write(path + "\n")
        rust.stdin.flush()
        ours = json.loads(rust.stdout.readline())
        with open(path, "rb") as f:
            data = f.read()
        theirs = python_side(yunet, net, data, args.repeats)
        name = os.path.basename(path)
        if ours["faces"] != theirs["faces"]:
            print(f"warning: {name}: vouch found {ours['faces']} face(s), Python {theirs['faces']}")
        if not ours["faces"] or not theirs["faces"]:
            print(f"{name}: no face, left out")
            continue
        results.append((name, ours, theirs))
    rust.stdin.close()
    rust.wait()

    print(f"{len(results)} faces-deepface photos, median of {args.repeats} runs per stage and photo; "
          f"vouch and Python alternating photo by photo")
    print(f"ONNX Runtime: one intra-op thread per session on both sides (vouch intra_op_threads="
          f"{ready['intra_op_threads']}, Python onnxruntime {onnxruntime.__version__} intra_op_num_threads=1); "
          f"models {ready['detector']}, {ready['embedder']}; detector input longer side "
          f"{ready['detect_max_side']}")
    if args.per_photo:
        print(f"\n{'photo':<34}{'stage':<12}{'vouch ms':>10}{'python ms':>11}{'ratio':>8}")
        for name, ours, theirs in results:
            size = f"{name} {ours['width']}x{ours['height']}"
            for s in STAGES:
                a, b = ours["ms"][s], theirs["ms"][s]
                print(f"{size:<34}{s:<12}{a:>10.2f}{b:>11.2f}{b / a:>7.1f}x")
    print(f"\n{'stage':<12}{'vouch ms':>10}{'python ms':>11}{'ratio':>8}   (sum over photos of per-photo medians)")
    for s in STAGES:
        a = sum(r[1]["ms"][s] for r in results)
        b = sum(r[2]["ms"][s] for r in results)
        print(f"{s:<12}{a:>10.2f}{b:>11.2f}{b / a:>7.1f}x")


if __name__ == "__main__":
    main()
