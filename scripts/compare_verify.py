#!/usr/bin/env python3
"""vouch's decision path beside the fastest honest Python pipeline, on the same photos.

The reference is `../shared/reference/refcommon.py`: OpenCV decoding (cv2.imdecode), YuNet on the
frame, cv2.warpAffine alignment, MobileFaceNet, MiniFASNet V2 + V1SE on their crops, the same
model files, one ONNX Runtime thread per session (no spinning pool). vouch is
`vouch bench verify PHOTO --json`: `Authenticator::verify` end to end — decoding, the quality
gate, liveness, the face match against a sealed template, the policy, a signed receipt and an
fsynced audit record — which the reference does not do at all.

The two sides alternate in rounds (reference, then vouch, then reference…) so that both see the
same machine; each round times `--runs` decisions per photo after a warm-up. Prints per-stage
medians side by side and the ratio reference / vouch of the end-to-end medians (above 1: vouch is
faster). `--json FILE` writes every figure.

Usage: python3 scripts/compare_verify.py [PHOTO ...] [--rounds 3] [--runs 50]
       [--vouch target/release/vouch] [--json FILE]
With no photo, faces-deepface img2.jpg downscaled to 640x480 (JPEG q92), as `cargo bench --bench
verify` uses. Needs: pip install onnxruntime numpy opencv-python-headless; VOUCH_SHARED (default
../shared); the vouch binary built (cargo build --release).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.setdefault("VOUCH_SHARED", os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "reference"))
import refcommon as R  # noqa: E402


def default_photo(tmp):
    """img2.jpg at 640x480, JPEG quality 92: a terminal camera's frame."""
    img = cv2.imread(os.path.join(SHARED, "data/faces-deepface/img2.jpg"))
    img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    path = os.path.join(tmp, "img2-640x480.jpg")
    with open(path, "wb") as f:
        f.write(buf.tobytes())
    return path


class Reference:
    def __init__(self):
        self.det, self.emb, self.live = R.YuNet(), R.Embedder(), R.Liveness()

    def decide(self, data):
        """One decision's stages, in ms: decode, detect, align + embed, liveness."""
        t0 = time.perf_counter()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        box, _, kps = R.largest(self.det.detect(img))
        t2 = time.perf_counter()
        e, _ = self.emb.embed(R.align112(img, kps))
        R.l2n(e)
        t3 = time.perf_counter()
        self.live.score(img, R.box_xywh(box))
        t4 = time.perf_counter()
        return {"decode": t1 - t0, "detect": t2 - t1, "embed": t3 - t2, "liveness": t4 - t3,
                "e2e": t4 - t0}

    def round(self, data, runs, warmup=5):
        for _ in range(warmup):
            self.decide(data)
        rows = [self.decide(data) for _ in range(runs)]
        return {k: 1000 * statistics.median(r[k] for r in rows) for k in rows[0]}


def vouch_round(binary, photo, runs):
    out = subprocess.run([binary, "bench", "verify", photo, "--runs", str(runs), "--json"],
                         check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    s = report["stages_ms_p50"]
    return {"decode": s["decode_ms"], "detect": s["observe_ms"], "embed": s["embed_ms"],
            "liveness": s["liveness_ms"], "match": s["match_ms"], "record": s["record_ms"],
            "e2e": report["e2e_ms_p50"], "outcomes": report["outcomes"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos", nargs="*")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--vouch", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "vouch"))
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    photos = args.photos or [default_photo(tmp)]
    reference = Reference()
    results = []
    for photo in photos:
        with open(photo, "rb") as f:
            data = f.read()
        ref_rounds, vouch_rounds = [], []
        for _ in range(args.rounds):
            ref_rounds.append(reference.round(data, args.runs))
            vouch_rounds.append(vouch_round(args.vouch, photo, args.runs))
        med = lambda rounds, k: statistics.median(r[k] for r in rounds)
        print(f"\n{photo} ({args.rounds} alternating rounds of {args.runs} decisions per side; "
              f"vouch outcomes {vouch_rounds[-1]['outcomes']})")
        print(f"{'stage':<12}{'reference':>12}{'vouch':>12}{'ratio':>8}")
        row = {"photo": photo, "reference": {}, "vouch": {}}
        for k, label in [("decode", "decode"), ("detect", "detect*"), ("embed", "align+embed"),
                         ("liveness", "liveness"), ("e2e", "end to end")]:
            r, v = med(ref_rounds, k), med(vouch_rounds, k)
            row["reference"][k], row["vouch"][k] = r, v
            print(f"{label:<12}{r:>10.2f} ms{v:>9.2f} ms{r / v:>7.2f}x")
        for k in ("match", "record"):
            row["vouch"][k] = med(vouch_rounds, k)
            print(f"{k:<12}{'–':>12}{row['vouch'][k]:>9.2f} ms")
        row["ratio_e2e"] = row["reference"]["e2e"] / row["vouch"]["e2e"]
        print(f"vouch decides in 1/{row['ratio_e2e']:.2f} of the reference's time "
              f"(*vouch's detect stage includes the quality gate's measurements)")
        results.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "runs": args.runs, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
