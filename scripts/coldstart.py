#!/usr/bin/env python3
"""vouchd's cold start: how long from the process's start to its health service answering
SERVING on the Unix socket, and to the first signed decision.

Each round makes a throwaway deployment (SQLite store, key, receipt key, audit log, the default
policy), enrolls a customer with `vouch face enroll` (faces-deepface img1, img4, img6), starts
`vouchd` and times, from just before its exec: the first SERVING answer of grpc.health.v1 (polled
every 2 ms), and the first Verify of another photo of the customer (sent as soon as SERVING).
The page cache is warm after the first round (the model files were read before), as on a
terminal that restarts its daemon; the first round is reported apart.

Usage: python3 scripts/coldstart.py [--rounds 5] [--json FILE]
Needs: grpcio, grpcio-tools, grpcio-health-checking; the release binaries (cargo build --release);
the models in .vouch/models (scripts/setup.sh); VOUCH_SHARED for the photos (default ../shared).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import vouch_stubs  # noqa: E402

SHARED = os.environ.get("VOUCH_SHARED", os.path.join(ROOT, "..", "shared"))
FACES = os.path.join(SHARED, "data", "faces-deepface")
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")


def deployment(d):
    """The library's configuration (for `vouch`) and vouchd's (the same with [daemon])."""
    config = f"""
[runtime]
library = "{os.environ.get('VOUCH_ORT_LIB', os.path.join(ROOT, '.vouch/lib/libonnxruntime.so'))}"
[models]
dir = "{os.environ.get('VOUCH_MODEL_DIR', os.path.join(ROOT, '.vouch/models'))}"
[store]
sqlite = "{d}/templates.db"
[keys]
file = "{d}/keys.toml"
[decisions]
receipt_key = "{d}/receipt.key"
audit_log = "{d}/audit.log"
"""
    path = os.path.join(d, "vouch.toml")
    with open(path, "w") as f:
        f.write(config)
    run = lambda *a: subprocess.run([os.path.join(BIN, "vouch"), "--config", path, *a],
                                    check=True, capture_output=True)
    run("keys", "generate")
    run("receipt", "keygen", "--out", os.path.join(d, "receipt.key"))
    run("face", "enroll", "customer", *(os.path.join(FACES, f) for f in ("img1.jpg", "img4.jpg", "img6.jpg")))
    daemon = os.path.join(d, "vouchd.toml")
    with open(daemon, "w") as f:
        f.write(f"""[daemon]
unix_socket = "{d}/vouchd.sock"
metrics_listen = "127.0.0.1:0"
{config}""")
    return daemon


def round_(d, probe):
    pb, stubs = vouch_stubs.load_stubs()
    config = deployment(d)
    socket = os.path.join(d, "vouchd.sock")
    started = time.perf_counter()
    daemon = subprocess.Popen([os.path.join(BIN, "vouchd"), "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not os.path.exists(socket):
            if daemon.poll() is not None:
                sys.exit(f"vouchd exited: {daemon.stderr.read().decode()}")
            time.sleep(0.002)
        channel = vouch_stubs.unix_channel(socket)
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            time.sleep(0.002)
        serving = time.perf_counter() - started
        decision = stubs.VouchStub(channel).Verify(pb.VerifyRequest(
            subject="customer",
            transaction=pb.Transaction(id="cold-1", nonce=f"n-{time.time_ns()}", amount_minor=450,
                                       currency="EUR", merchant_category="5411"),
            frames=[pb.Image(data=probe, format=pb.IMAGE_FORMAT_JPEG)]), timeout=30)
        decided = time.perf_counter() - started
        return serving, decided, pb.Decision.Name(decision.decision)
    finally:
        daemon.terminate()
        daemon.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    with open(os.path.join(FACES, "img7.jpg"), "rb") as f:
        probe = f.read()
    rounds = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as d:
            serving, decided, decision = round_(d, probe)
        rounds.append({"serving_s": serving, "first_decision_s": decided, "decision": decision})
        print(f"round {i + 1}: SERVING after {serving:.3f} s, first decision ({decision}) after {decided:.3f} s")
    warm = rounds[1:] or rounds
    print(f"median of the warm rounds: SERVING {statistics.median(r['serving_s'] for r in warm):.3f} s, "
          f"first decision {statistics.median(r['first_decision_s'] for r in warm):.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds}, f, indent=1)


if __name__ == "__main__":
    main()
