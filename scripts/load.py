#!/usr/bin/env python3
"""Load on a running vouchd: many concurrent terminals over the Unix socket, each calling
Verify (or GetSubject) in a loop; prints throughput, latency percentiles, the gRPC codes
received and the daemon's peak memory. A measurement to read, not a test: it asserts nothing.

    python3 scripts/load.py --socket SOCK [--clients 8] [--duration 30]
                            [--method verify|get-subject] [--image FILE] [--pid PID]

Enrolls `load-subject` from img1.jpg and img2.jpg of the shared face photos first (replacing
any earlier enrollment), then every client verifies `--image` for a small payment (EUR 4.50,
MCC 5411) until the duration is over. Each client has its own channel (its own connection),
as separate terminals would. Latency percentiles are over OK calls only; RESOURCE_EXHAUSTED
(the daemon's bounded queue refusing work) and every other code are counted apart.
With --pid, the daemon's RSS is sampled each second and its VmHWM read at the end.

scripts/load.sh builds and starts a daemon and runs this against it.
"""
import argparse
import atexit
import os
import shutil
import sys
import tempfile
import threading
import time

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("VOUCH_SHARED") or os.path.join(ROOT, "..", "shared")
FACES = os.path.join(SHARED, "data", "faces-deepface")
SUBJECT = "load-subject"


def load_stubs():
    """The Python stubs of proto/vouch/v1/vouch.proto, generated into a temporary folder."""
    out = tempfile.mkdtemp(prefix="vouch-load-stubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    proto_dir = os.path.join(ROOT, "proto")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
        f"--grpc_python_out={out}", "vouch/v1/vouch.proto",
    ])
    if code != 0:
        sys.exit("protoc failed on proto/vouch/v1/vouch.proto")
    sys.path.insert(0, out)
    from vouch.v1 import vouch_pb2, vouch_pb2_grpc  # noqa: E402
    return vouch_pb2, vouch_pb2_grpc


pb, rpc = load_stubs()


def channel(socket):
    # grpc-core names a Unix socket's path as the HTTP/2 authority, which vouchd's HTTP/2
    # stack refuses as invalid: name a plain one instead.
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.default_authority", "localhost")]
    return grpc.insecure_channel(f"unix://{socket}", options=options)


def image(path):
    try:
        with open(path, "rb") as f:
            return pb.Image(data=f.read(), format=pb.IMAGE_FORMAT_JPEG)
    except OSError as e:
        sys.exit(f"cannot read the photo {path}: {e.strerror} (set VOUCH_SHARED or --image)")


def memory_kib(pid, field):
    """A `VmRSS:`/`VmHWM:` line of /proc/PID/status in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Tally:
    """What every client saw, under one lock (a call takes milliseconds: no contention)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []  # seconds, OK calls only
        self.codes = {}
        self.decisions = {}
        self.first_errors = {}  # code -> the first message, to show what went wrong

    def ok(self, seconds, decision):
        with self.lock:
            self.latencies.append(seconds)
            self.codes["OK"] = self.codes.get("OK", 0) + 1
            if decision is not None:
                self.decisions[decision] = self.decisions.get(decision, 0) + 1

    def error(self, code, message):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1
            self.first_errors.setdefault(code, message)


def client(n, args, probe, stop_at, tally):
    stub = rpc.VouchStub(channel(args.socket))
    i = 0
    while time.monotonic() < stop_at:
        i += 1
        tid = f"load-{n}-{i}"
        started = time.perf_counter()
        try:
            if args.method == "verify":
                answer = stub.Verify(pb.VerifyRequest(
                    subject=SUBJECT,
                    transaction=pb.Transaction(id=tid, nonce=f"n-{tid}-{time.time_ns()}",
                                               amount_minor=450, currency="EUR",
                                               merchant_category="5411"),
                    frames=[probe]), timeout=120)
                decision = pb.Decision.Name(answer.decision)
            else:
                stub.GetSubject(pb.GetSubjectRequest(subject=SUBJECT), timeout=120)
                decision = None
            tally.ok(time.perf_counter() - started, decision)
        except grpc.RpcError as e:
            tally.error(e.code().name, e.details())
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # A terminal told "busy" backs off a little instead of hammering.
                time.sleep(0.01)


def sample_rss(pid, done, peak):
    while not done.wait(1.0):
        rss = memory_kib(pid, "VmRSS")
        if rss is not None:
            peak[0] = max(peak[0], rss)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True, help="vouchd's Unix socket")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--duration", type=float, default=30, help="seconds of load (default 30)")
    p.add_argument("--method", choices=("verify", "get-subject"), default="verify")
    p.add_argument("--image", default=os.path.join(FACES, "img7.jpg"),
                   help="the face photo to verify (default: img7.jpg of the shared faces)")
    p.add_argument("--pid", type=int, help="vouchd's pid, for its peak memory")
    args = p.parse_args()
    if args.clients < 1 or args.duration <= 0:
        sys.exit("--clients must be at least 1 and --duration positive")

    probe = image(args.image)
    setup = rpc.VouchStub(channel(args.socket))
    try:
        try:
            setup.DeleteSubject(pb.DeleteSubjectRequest(subject=SUBJECT), timeout=30)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
        enrolled = setup.Enroll(pb.EnrollRequest(
            subject=SUBJECT,
            face=[image(os.path.join(FACES, f)) for f in ("img1.jpg", "img2.jpg")]), timeout=120)
    except grpc.RpcError as e:
        sys.exit(f"cannot enroll {SUBJECT} on {args.socket}: {e.code().name}: {e.details()}")
    if not enrolled.face_enrolled:
        sys.exit(f"enrollment of {SUBJECT} stored nothing: {enrolled}")

    rss_before = memory_kib(args.pid, "VmRSS") if args.pid else None
    peak_rss = [rss_before or 0]
    done = threading.Event()
    sampler = None
    if args.pid:
        sampler = threading.Thread(target=sample_rss, args=(args.pid, done, peak_rss), daemon=True)
        sampler.start()

    tally = Tally()
    print(f"{args.clients} clients calling {args.method} for {args.duration:g} s on {args.socket} ...",
          flush=True)
    started = time.monotonic()
    stop_at = started + args.duration
    # Daemon threads, so that Ctrl-C ends the run at once.
    threads = [threading.Thread(target=client, args=(n, args, probe, stop_at, tally), daemon=True)
               for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    done.set()
    if sampler:
        sampler.join()

    # Still serving after the load?
    try:
        setup.GetReceiptKey(pb.GetReceiptKeyRequest(), timeout=10)
        after = "yes"
    except grpc.RpcError as e:
        after = f"NO ({e.code().name}: {e.details()})"

    lat = sorted(tally.latencies)
    ok = tally.codes.get("OK", 0)
    total = sum(tally.codes.values())
    rows = [
        ("method", args.method),
        ("clients", str(args.clients)),
        ("elapsed", f"{elapsed:.1f} s"),
        ("calls", str(total)),
        ("throughput (OK)", f"{ok / elapsed:.2f} /s"),
        ("p50 latency (OK)", f"{percentile(lat, 50) * 1000:.1f} ms"),
        ("p99 latency (OK)", f"{percentile(lat, 99) * 1000:.1f} ms"),
        ("max latency (OK)", f"{lat[-1] * 1000:.1f} ms" if lat else "-"),
        ("OK", str(ok)),
        ("RESOURCE_EXHAUSTED", str(tally.codes.get("RESOURCE_EXHAUSTED", 0))),
    ]
    others = {c: n for c, n in tally.codes.items() if c not in ("OK", "RESOURCE_EXHAUSTED")}
    rows.append(("other codes", ", ".join(f"{c} {n}" for c, n in sorted(others.items())) or "0"))
    if tally.decisions:
        rows.append(("decisions (OK)",
                     ", ".join(f"{d.removeprefix('DECISION_')} {n}"
                               for d, n in sorted(tally.decisions.items()))))
    if args.pid:
        hwm = memory_kib(args.pid, "VmHWM")
        rows.append(("daemon RSS before", f"{rss_before / 1024:.1f} MiB" if rss_before else "-"))
        rows.append(("daemon peak RSS (sampled 1/s)", f"{peak_rss[0] / 1024:.1f} MiB"))
        rows.append(("daemon VmHWM", f"{hwm / 1024:.1f} MiB" if hwm else "- (process gone)"))
    rows.append(("serving afterwards", after))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    for code, message in sorted(tally.first_errors.items()):
        print(f"  first {code}: {message}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
