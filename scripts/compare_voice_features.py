#!/usr/bin/env python3
"""Side-by-side speed of voice features: vouch (Rust) against python_speech_features (MFCC)
and librosa (mel power spectrogram), on the same 16 kHz recordings, best of N runs each,
alternating implementations file by file. Prints milliseconds per second of audio and ratios.

Usage: python3 scripts/compare_voice_features.py [--shared ../shared] [--files 10] [--repeats 20]
Needs: pip install python_speech_features librosa soundfile; cargo (builds the timing example).
"""
import argparse
import glob
import os
import subprocess
import time

import librosa
import numpy as np
import python_speech_features as psf
import soundfile as sf


def best_of(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("VOUCH_SHARED", "../shared"))
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.shared, "data/librispeech/test-other/*/*.flac")))[: args.files]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "voice_timing"], check=True)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    rust = {}
    for f in files:  # alternate: one file in Rust, then the same file in Python
        out = subprocess.run([os.path.join(target, "release/examples/voice_timing"), f], check=True,
                             capture_output=True, text=True, env={**os.environ, "REPEATS": str(args.repeats)}).stdout
        for line in out.splitlines():
            path, feature, seconds, ms = line.rsplit(" ", 3)
            rust[(path, feature)] = (float(seconds), float(ms))
        x, rate = sf.read(f, dtype="float64")
        rust[(f, "psf")] = (len(x) / rate, best_of(args.repeats, lambda: psf.mfcc(x, samplerate=rate)))
        rust[(f, "librosa")] = (len(x) / rate, best_of(args.repeats, lambda: librosa.feature.melspectrogram(
            y=x, sr=rate, n_fft=400, hop_length=160, center=True, pad_mode="constant", power=2.0,
            n_mels=40, fmin=0, fmax=8000, htk=False, norm="slaney")))
    def per_second(feature):
        return np.mean([rust[(f, feature)][1] / rust[(f, feature)][0] for f in files])
    total = sum(rust[(f, "mfcc")][0] for f in files)
    print(f"{len(files)} LibriSpeech files, {total:.1f} s of 16 kHz audio, best of {args.repeats} runs each")
    print(f"{'feature':<28}{'vouch ms/s':>12}{'python ms/s':>13}{'ratio':>9}")
    for name, ours, theirs in [("MFCC vs python_speech_features", "mfcc", "psf"),
                               ("mel vs librosa", "mel", "librosa")]:
        a, b = per_second(ours), per_second(theirs)
        print(f"{name:<28}{a:>12.3f}{b:>13.3f}{b / a:>8.1f}x")


if __name__ == "__main__":
    main()
