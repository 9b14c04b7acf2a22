#!/usr/bin/env python3
"""What the calibrated face thresholds do on evaluation pairs: for MobileFaceNet, SFace and the
shipped fusion (calibration/mobilefacenet.toml, sface.toml, face-fused.toml), the FNMR at
empirical FMRs and the real FMR and FNMR at the thresholds a policy tier applies for 1e-3 and
1e-4 (extrapolated from the calibration data, so worth checking on data they never saw).

Usage: python3 scripts/operating_points.py REPORT_DIR
where REPORT_DIR is the --out folder of `vouch eval face --face-models
mobilefacenet_int8,sface_int8 … --out REPORT_DIR` (its pairs.csv: a, b, label, one score
column per model). Pairs with a model's score missing (failures to acquire) are left out.
"""
import csv
import os
import sys
import tomllib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CALIBRATIONS = ["mobilefacenet", "sface", "face-fused"]


def main(report_dir):
    with open(os.path.join(report_dir, "pairs.csv")) as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], [r for r in rows[1:] if r[3] and r[4]]
    if len(head) < 5:
        sys.exit("pairs.csv needs two model columns (MobileFaceNet, then SFace)")
    genuine = np.array([r[2] == "genuine" for r in rows])
    scores = np.array([[float(r[3]), float(r[4])] for r in rows])
    cal = {}
    for name in CALIBRATIONS:
        with open(os.path.join(HERE, "..", "calibration", f"{name}.toml"), "rb") as f:
            cal[name] = tomllib.load(f)
    fusion = cal["face-fused"]["fusion"]
    z = (scores - np.array(fusion["impostor_mean"])) / np.array(fusion["impostor_sd"])
    by_name = {
        "mobilefacenet": scores[:, 0],
        "sface": scores[:, 1],
        "face-fused": z @ np.array(fusion["weights"]) + fusion["bias"],
    }
    print(f"{report_dir}: {genuine.sum()} genuine, {(~genuine).sum()} impostor pairs "
          f"({head[3]}, {head[4]})")
    for name, s in by_name.items():
        impostors = np.sort(s[~genuine])[::-1]
        line = f"{name:14s}"
        for fmr in (1e-3, 1e-4, 1e-5):
            k = min(int(np.floor(fmr * len(impostors))), len(impostors) - 1)
            line += f"  FNMR@{fmr:g} {100 * np.mean(s[genuine] <= impostors[k]):6.2f} %"
        for point in cal[name]["points"]:
            if point["fmr"] in (1e-3, 1e-4):
                t = point["threshold"]
                line += (f" | calibrated {point['fmr']:g}: FMR {np.mean(s[~genuine] >= t):.1e},"
                         f" FNMR {100 * np.mean(s[genuine] < t):.2f} %")
        print(line)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
