#!/usr/bin/env python3
"""Trains the spoken-digit head on pooled speech-embedding features and measures it on speakers
it never saw (leave one speaker out). Deterministic: the same inputs give the same head.

Inputs are CSV files from `cargo run --release --example digit_features -- DIR OUT.csv --pad 0.4`
(digit, speaker, take, 192 features per line): the real corpus (FSDD) and, optionally, synthetic
voices (`scripts/synth_digits.py`), which only ever train: a synthetic voice is not a speaker for
any figure. For each real speaker, a head is trained on the other real speakers plus the synthetic
voices and judged on that speaker's recordings: alone, and adapted with the speaker's own first K
takes of each digit as centroids (score = log posterior + ALPHA x cosine to the digit's centroid;
the takes that adapt are never judged), as an enrollment of one or two utterances would allow.

Writes a JSON report (per speaker and overall accuracy, the confusion matrix of the unadapted
heads) and, with --head, the head trained on every real speaker and the synthetic voices:
standardisation, weights and biases, the recipe and the sha256 of its inputs.

Usage: python3 scripts/train_digit_head.py --real fsdd.csv [--synthetic synth.csv]
                                           [--report loso.json] [--head head.json]
Needs: pip install numpy scikit-learn
"""
import argparse
import csv
import hashlib
import json
import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

C = 1.0          # inverse L2 strength of the multinomial logistic regression
ADAPT = [(1, 20.0), (2, 20.0)]   # (enrollment takes per digit, ALPHA)


def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    digits = np.array([int(r[0]) for r in rows])
    speakers = np.array([r[1] for r in rows])
    takes = np.array([int(r[2]) for r in rows])
    features = np.array([[float(v) for v in r[3:]] for r in rows], dtype=np.float64)
    return digits, speakers, takes, features


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def train(x, y):
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=C, max_iter=5000).fit(scaler.transform(x), y)
    return scaler, model


def write_head(path, scaler, model, recipe, inputs):
    head = {"format": "vouch.digit-head", "version": 1,
            "features": "speech_embedding pooled mean then max (192), words padded 0.4 s",
            "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
            "weights": model.coef_.tolist(), "bias": model.intercept_.tolist(),
            "recipe": recipe, "inputs": inputs}
    with open(path, "w") as f:
        json.dump(head, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", required=True)
    ap.add_argument("--synthetic")
    ap.add_argument("--report", default="digit-head-loso.json")
    ap.add_argument("--head")
    ap.add_argument("--held-out-heads", metavar="DIR",
                    help="also write DIR/{speaker}.json: each leave-one-speaker-out head, for "
                         "`vouch eval passphrase --heads DIR`")
    args = ap.parse_args()
    if args.held_out_heads:
        os.makedirs(args.held_out_heads, exist_ok=True)
    y, spk, take, x = load(args.real)
    if args.synthetic:
        ys, _, _, xs = load(args.synthetic)
    else:
        ys, xs = np.zeros(0, dtype=int), np.zeros((0, x.shape[1]))
    speakers = sorted(set(spk))
    per_speaker = {}
    confusion = np.zeros((10, 10), dtype=int)
    adapted_hits = {k: 0 for k, _ in ADAPT}
    adapted_count = {k: 0 for k, _ in ADAPT}
    for s in speakers:
        held = spk == s
        scaler, model = train(np.vstack([x[~held], xs]), np.concatenate([y[~held], ys]))
        if args.held_out_heads:
            write_head(os.path.join(args.held_out_heads, f"{s}.json"), scaler, model,
                       {"held_out": s, "model": "multinomial logistic regression on standardised features", "C": C},
                       {"real": sha256(args.real), "synthetic": sha256(args.synthetic) if args.synthetic else None})
        z = scaler.transform(x[held])
        log_post = model.predict_log_proba(z)
        pred = log_post.argmax(1)
        for t, p in zip(y[held], pred):
            confusion[t, p] += 1
        entry = {"recordings": int(held.sum()), "accuracy": float((pred == y[held]).mean())}
        zu, yh, th = unit(z), y[held], take[held]
        for k, alpha in ADAPT:
            enroll = th < k
            judged = ~enroll
            centroids = np.stack([unit(zu[enroll & (yh == d)].mean(0)) for d in range(10)])
            scores = log_post[judged] + alpha * (zu[judged] @ centroids.T)
            hits = int((scores.argmax(1) == yh[judged]).sum())
            entry[f"adapted_{k}_takes"] = hits / int(judged.sum())
            adapted_hits[k] += hits
            adapted_count[k] += int(judged.sum())
        per_speaker[s] = entry
        print(s, {k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}, flush=True)
    total = sum(e["recordings"] for e in per_speaker.values())
    overall = sum(e["accuracy"] * e["recordings"] for e in per_speaker.values()) / total
    report = {
        "protocol": "leave one real speaker out; synthetic voices train only",
        "accuracy": overall,
        "adapted": {f"{k}_takes": adapted_hits[k] / adapted_count[k] for k, _ in ADAPT},
        "per_speaker": per_speaker,
        "confusion": confusion.tolist(),
        "inputs": {"real": sha256(args.real), "synthetic": sha256(args.synthetic) if args.synthetic else None},
        "recipe": {"model": "multinomial logistic regression on standardised features", "C": C,
                   "adapt": [{"takes": k, "alpha": a} for k, a in ADAPT]},
    }
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)
    print(f"accuracy on unseen speakers {overall:.4f}; adapted", report["adapted"])
    if args.head:
        scaler, model = train(np.vstack([x, xs]), np.concatenate([y, ys]))
        write_head(args.head, scaler, model, report["recipe"], report["inputs"])
        print(f"head written to {args.head}")


if __name__ == "__main__":
    main()
