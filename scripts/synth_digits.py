#!/usr/bin/env python3
"""Synthetic spoken digits for training vouch's digit head: Debian's espeak-ng voices and
variants at several rates and pitches, each rendering also copied with noise and through an
8 kHz telephone band. Deterministic: the same voices, settings and noise seeds every run.

Writes {digit}_{speaker}_{take}.wav (16-bit PCM) into OUT, where speaker names the synthetic
voice (synth-VOICE-VARIANT, no underscore) and take the rendering; a training set, never a
test set (synthetic voices are not speakers for any reported figure).

Usage: python3 scripts/synth_digits.py OUT    (needs: apt install espeak-ng; pip install numpy)
"""
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOICES = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = ["", "m1", "m3", "m5", "m7", "f1", "f2", "f4"]
RATES = [130, 175, 220]
PITCHES = [30, 55, 80]


def read_wav(path):
    with wave.open(path) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return rate, x


def write_wav(path, rate, x):
    pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def telephone(rate, x):
    """Down to 8 kHz with a windowed-sinc low-pass at 3.4 kHz (band of a phone line)."""
    taps = 101
    n = np.arange(taps) - taps // 2
    cutoff = 3400.0 / rate
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    y = np.convolve(x, h / h.sum(), mode="same")
    t = np.arange(0, len(x) / rate, 1 / 8000.0)
    return 8000, np.interp(t, np.arange(len(x)) / rate, y)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(18)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        for voice in VOICES:
            for variant in VARIANTS:
                name = voice + (f"+{variant}" if variant else "")
                speaker = "synth-" + name.replace("+", "-").replace("_", "-")
                take = 0
                for rate in RATES:
                    for pitch in PITCHES:
                        for digit, word in enumerate(WORDS):
                            subprocess.run(["espeak-ng", "-v", name, "-s", str(rate), "-p", str(pitch),
                                            "-w", raw, word], check=True, capture_output=True)
                            sr, x = read_wav(raw)
                            peak = np.abs(x).max() or 1.0
                            x = x / peak * (0.3 + 0.5 * rng.random())
                            write_wav(os.path.join(out, f"{digit}_{speaker}_{take}.wav"), sr, x)
                            # The same word with noise at 20 or 10 dB SNR, and through a phone line.
                            snr = rng.choice([20.0, 10.0])
                            noise = rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr / 10))
                            write_wav(os.path.join(out, f"{digit}_{speaker}_{take + 1}.wav"), sr, x + noise)
                            tr, tx = telephone(sr, x)
                            write_wav(os.path.join(out, f"{digit}_{speaker}_{take + 2}.wav"), tr, tx)
                            count += 3
                        take += 3
    print(f"{count} synthetic digit recordings in {out}")


if __name__ == "__main__":
    main()
