#!/usr/bin/env python3
"""The memory curve of vouchd under load: the daemon's resident memory over time, one line per
run, from the sample CSVs of scripts/load.py (--samples-csv), with the throughput below it.

    python3 scripts/soak_plot.py --out docs/soak-memory.png unix.csv tls.csv

Needs matplotlib (pip install matplotlib); without it, says so and exits 2.
"""
import argparse
import csv
import sys


class MissingMatplotlib(Exception):
    """matplotlib cannot be imported by this Python."""


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def label(rows):
    r = rows[0]
    return f"{r['transport']}, {r['clients']} clients, {r['probe']}"


def rate(rows, window=30.0):
    """(minutes, OK calls per second over the trailing `window` seconds) per sample."""
    points = []
    for i, r in enumerate(rows):
        t = float(r["elapsed_s"])
        if t < window:
            continue
        j = max(k for k in range(i + 1) if float(rows[k]["elapsed_s"]) <= t - window)
        t0 = float(rows[j]["elapsed_s"])
        points.append((t / 60, (int(r["ok"]) - int(rows[j]["ok"])) / (t - t0)))
    return points


def plot(csv_paths, out, title="vouchd under load: resident memory"):
    """Draws the RSS curve (and throughput) of every CSV into the PNG `out`."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise MissingMatplotlib(f"matplotlib is not installed for {sys.executable} ({e})") from e
    runs = [(path, read(path)) for path in csv_paths]
    fig, (mem, calls) = plt.subplots(2, 1, figsize=(7.5, 5), dpi=100, sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1.3]})
    for path, rows in runs:
        rows = [r for r in rows if r["rss_kib"]]
        if not rows:
            print(f"{path}: no RSS samples (was --pid given?)", file=sys.stderr)
            continue
        minutes = [float(r["elapsed_s"]) / 60 for r in rows]
        line, = mem.plot(minutes, [int(r["rss_kib"]) / 1024 for r in rows], label=label(rows),
                         linewidth=1.4)
        points = rate(rows)
        if points:
            calls.plot(*zip(*points), color=line.get_color(), linewidth=1.2)
    mem.set_ylabel("VmRSS (MiB)")
    mem.set_title(title, fontsize=11)
    mem.grid(alpha=0.3)
    mem.legend(fontsize=8, loc="lower right")
    bottom, top = mem.get_ylim()
    mem.set_ylim(0, top * 1.05)
    calls.set_ylabel("OK calls/s\n(30 s)")
    calls.set_xlabel("minutes under load")
    calls.grid(alpha=0.3)
    calls.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--title", default="vouchd under load: resident memory")
    p.add_argument("csv", nargs="+", help="sample CSVs of scripts/load.py --samples-csv")
    args = p.parse_args()
    try:
        plot(args.csv, args.out, args.title)
    except MissingMatplotlib as e:
        print(f"no plot: {e}; pip install matplotlib", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
