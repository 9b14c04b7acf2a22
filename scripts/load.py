#!/usr/bin/env python3
"""Load and soak on a running vouchd: many concurrent terminals over the Unix socket or over
mutual TLS, each calling Verify (or GetSubject) in a loop; prints throughput, latency
percentiles and the gRPC codes received, and, given the daemon's pid, the curve of its
resident memory, open descriptors and threads, with a verdict on whether memory stopped
growing.

    python3 scripts/load.py (--socket SOCK | --transport tls --tcp HOST:PORT --certs DIR)
                            [--clients 8] [--duration 30 | 6m] [--method verify|get-subject]
                            [--image FILE] [--frame 640x480] [--pid PID]
                            [--sample-every 5] [--window 30] [--samples-csv FILE] [--plot FILE]

Enrolls `load-subject` from img1.jpg, img4.jpg and img6.jpg of the shared face photos first
(replacing any earlier enrollment), then every client verifies `--image` (optionally
downscaled to `--frame`, as a terminal's camera would send it) for a small payment (EUR 4.50,
MCC 5411) until the duration is over. Each client has its own channel (its own connection),
as separate terminals would; over TLS every client presents the certificate of `--terminal`.

Latency percentiles are over OK calls only. RESOURCE_EXHAUSTED (the daemon's bounded queue
refusing work) is counted apart and is not an error; every other code is. A measurement, not
a test: it asserts nothing about speed, but exits 1 when a call failed or the daemon stopped
serving, because a soak must show zero errors.

With --pid the daemon's VmRSS, VmHWM, open descriptors (/proc/PID/fd), threads and CPU time
are sampled every --sample-every seconds (and written to --samples-csv); one table row is
printed per --window seconds. The growth verdict compares the mean and the peak RSS of the
last third of the run with those of the middle third, and fits a slope (MiB/min).
--plot draws the RSS curve (scripts/soak_plot.py, which also overlays several runs' CSVs).

scripts/load.sh builds and starts a daemon and runs this against it.
"""
import argparse
import csv
import io
import os
import re
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vouch_stubs import ROOT, load_stubs, tls_channel, unix_channel  # noqa: E402

SHARED = os.environ.get("VOUCH_SHARED") or os.path.join(ROOT, "..", "shared")
FACES = os.path.join(SHARED, "data", "faces-deepface")
SUBJECT = "load-subject"
# The subject of the verify bench (benches/verify.rs): three photos of id01, none of them a
# probe here.
ENROLL = ("img1.jpg", "img4.jpg", "img6.jpg")
CSV_FIELDS = ("transport", "clients", "probe", "elapsed_s", "ok", "busy", "errors",
              "rss_kib", "hwm_kib", "fds", "threads", "cpu_s", "load1")


def seconds(text):
    """A duration: `90`, `90s`, `6m` or `1.5h`, in seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90, 90s, 6m, 1h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def frame_size(text):
    m = re.fullmatch(r"([0-9]+)x([0-9]+)", text)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise argparse.ArgumentTypeError(f"not a frame size: {text!r} (e.g. 640x480)")
    return int(m.group(1)), int(m.group(2))


def photo_bytes(path, frame=None):
    """The JPEG bytes of `path`; with `frame` (W, H), the photo centre-cropped to that aspect
    ratio and downscaled to exactly W×H (JPEG quality 92, 4:2:0, as benches/face.rs does)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.exit(f"cannot read the photo {path}: {e.strerror} (set VOUCH_SHARED or --image)")
    if frame is None:
        return data
    try:
        from PIL import Image, ImageOps
    except ImportError:
        sys.exit("--frame needs Pillow (pip install pillow) in " + sys.executable)
    with Image.open(io.BytesIO(data)) as im:
        im = ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), frame,
                          Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=92, subsampling=2)
        return out.getvalue()


def jpeg(data):
    pb, _ = load_stubs()
    return pb.Image(data=data, format=pb.IMAGE_FORMAT_JPEG)


def connect(args):
    """A new channel to the daemon over the chosen transport."""
    if args.transport == "unix":
        return unix_channel(args.socket)
    return tls_channel(args.tcp, args.certs, args.terminal)


class Proc:
    """What /proc says about the daemon; every reader returns None once the process is gone."""

    def __init__(self, pid):
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def status_kib(self, field):
        """A `VmRSS:`/`VmHWM:`/`Threads:` line of /proc/PID/status (KiB, or a count)."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def cpu_seconds(self):
        """User + system CPU time so far."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                # The command name (field 2) may hold spaces: count from the closing paren.
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.ticks
        except (OSError, IndexError, ValueError):
            return None


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Tally:
    """What every client saw, under one lock (a call takes milliseconds: no contention)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = []  # (monotonic end, latency in seconds) of OK calls, in completion order
        self.codes = {}
        self.decisions = {}
        self.first_errors = {}  # code -> the first message, to show what went wrong

    def ok(self, ended, seconds, decision):
        with self.lock:
            self.done.append((ended, seconds))
            self.codes["OK"] = self.codes.get("OK", 0) + 1
            if decision is not None:
                self.decisions[decision] = self.decisions.get(decision, 0) + 1

    def error(self, code, message):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1
            self.first_errors.setdefault(code, message)

    def counts(self):
        """(OK, RESOURCE_EXHAUSTED, every other code) so far."""
        with self.lock:
            ok = self.codes.get("OK", 0)
            busy = self.codes.get("RESOURCE_EXHAUSTED", 0)
            return ok, busy, sum(self.codes.values()) - ok - busy


def client(n, args, probe, stop_at, tally):
    pb, rpc = load_stubs()
    stub = rpc.VouchStub(connect(args))
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
            tally.ok(time.monotonic(), time.perf_counter() - started, decision)
        except grpc.RpcError as e:
            tally.error(e.code().name, e.details())
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # A terminal told "busy" backs off a little instead of hammering.
                time.sleep(0.01)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


class Monitor:
    """Samples the daemon and the tally every `every` seconds from `started`, writes each
    sample to the CSV and prints one curve row per `window` seconds."""

    ROW = "{:>6} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>8} {:>5} {:>5} {:>6} {:>6}"

    def __init__(self, args, tally, started, csv_file):
        self.args = args
        self.tally = tally
        self.started = started
        self.proc = Proc(args.pid) if args.pid else None
        self.samples = []  # dicts with CSV_FIELDS
        self.stop = threading.Event()
        self.csv = None
        if csv_file:
            self.csv = csv.DictWriter(csv_file, fieldnames=CSV_FIELDS)
            self.csv.writeheader()
        self.window_start = (started, 0, 0, 0, None)  # time, done index, busy, errors, cpu
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self, now):
        ok, busy, errors = self.tally.counts()
        p = self.proc
        s = {
            "transport": self.args.transport, "clients": self.args.clients,
            "probe": self.args.probe_label, "elapsed_s": round(now - self.started, 1),
            "ok": ok, "busy": busy, "errors": errors,
            "rss_kib": p and p.status_kib("VmRSS"), "hwm_kib": p and p.status_kib("VmHWM"),
            "fds": p and p.fds(), "threads": p and p.status_kib("Threads"),
            "cpu_s": p and p.cpu_seconds(), "load1": load1(),
        }
        self.samples.append(s)
        if self.csv:
            self.csv.writerow(s)
        return s

    def header(self):
        print(self.ROW.format("time", "calls", "calls/s", "p50 ms", "p99 ms", "busy", "err",
                              "RSS MiB", "fds", "thr", "CPU %", "load"), flush=True)

    def row(self, now, s):
        """The curve row of the window ending now."""
        t0, index, busy0, errors0, cpu0 = self.window_start
        with self.tally.lock:
            window = sorted(lat for _, lat in self.tally.done[index:])
            end = len(self.tally.done)
        span = max(now - t0, 1e-9)
        cpu = s["cpu_s"]
        cpu_pct = "-" if cpu is None or cpu0 is None else f"{100 * (cpu - cpu0) / span:.0f}"
        elapsed = int(round(now - self.started))
        print(self.ROW.format(
            f"{elapsed // 60}:{elapsed % 60:02d}", s["ok"], f"{len(window) / span:.2f}",
            f"{percentile(window, 50) * 1000:.0f}" if window else "-",
            f"{percentile(window, 99) * 1000:.0f}" if window else "-",
            s["busy"] - busy0, s["errors"] - errors0, mib(s["rss_kib"]),
            "-" if s["fds"] is None else s["fds"], "-" if s["threads"] is None else s["threads"],
            cpu_pct, f"{s['load1']:.1f}"), flush=True)
        self.window_start = (now, end, s["busy"], s["errors"], cpu)

    def run(self):
        every = self.args.sample_every
        per_row = max(1, round(self.args.window / every))
        n = 0
        while not self.stop.wait(max(0.0, self.started + (n + 1) * every - time.monotonic())):
            n += 1
            now = time.monotonic()
            s = self.sample(now)
            if n % per_row == 0:
                self.row(now, s)

    def start(self):
        s = self.sample(self.started)
        self.window_start = (self.started, 0, 0, 0, s["cpu_s"])
        self.header()
        self.thread.start()

    def finish(self):
        """The last sample (at the end of the load) and, if the window was cut short, its row."""
        self.stop.set()
        self.thread.join()
        now = time.monotonic()
        s = self.sample(now)
        if now - self.window_start[0] >= 1:
            self.row(now, s)


def slope_per_minute(points):
    """Least-squares slope of (seconds, value) points, per minute; None under two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return 60 * sum((x - mx) * (y - my) for x, y in points) / sxx


def variance(values):
    """Sample variance; 0 under two values."""
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return sum((v - m) ** 2 for v in values) / (len(values) - 1)


def growth(samples, duration):
    """Rows on whether the daemon's RSS, descriptors and threads stopped growing, from the
    samples taken under load (the first `duration` seconds)."""
    mem = [(s["elapsed_s"], s["rss_kib"] / 1024) for s in samples
           if s["rss_kib"] is not None and s["elapsed_s"] <= duration]
    middle = [v for t, v in mem if duration / 3 <= t < 2 * duration / 3]
    last = [(t, v) for t, v in mem if t >= 2 * duration / 3]
    if len(middle) < 2 or len(last) < 2:
        return [("RSS verdict", "too few samples under load for a verdict (run longer)")]
    values = [v for _, v in last]
    mean_middle = sum(middle) / len(middle)
    mean_last = sum(values) / len(values)
    # An instant's RSS swings with the work in flight (a full-resolution detection holds tens
    # of MiB that go back to the system after it): a leak is the last third's mean *and* its
    # peak above the middle third's, each by more than noise. Noise: the larger of 2 MiB
    # (allocator arenas, a message more or less) and 0.5 %; for the mean, also twice the
    # standard error of the difference of the two means, which the swings set.
    tolerance = max(2.0, 0.005 * mean_last)
    spread = 2 * (variance(middle) / len(middle) + variance(values) / len(values)) ** 0.5
    mean_tolerance = max(tolerance, spread)
    rises = mean_last - mean_middle > mean_tolerance
    new_peak = max(values) - max(middle) > tolerance
    if rises and new_peak:
        verdict = "STILL GROWING (mean and peak up by more than noise)"
    elif rises or new_peak:
        verdict = f"inconclusive ({'mean' if rises else 'peak'} up by more than noise): run longer"
    else:
        verdict = "stopped growing (last third's mean and peak within noise of the middle third's)"
    rows = [
        ("RSS middle third, mean (min-max)",
         f"{mean_middle:.1f} MiB ({min(middle):.1f}-{max(middle):.1f})"),
        ("RSS last third, mean (min-max)",
         f"{mean_last:.1f} MiB ({min(values):.1f}-{max(values):.1f}), "
         f"{mean_last - mean_middle:+.1f} MiB"),
        ("RSS noise allowed, mean / peak", f"{mean_tolerance:.1f} / {tolerance:.1f} MiB"),
        ("RSS slope, last third", f"{slope_per_minute(last):+.3f} MiB/min"),
        ("RSS slope, last two thirds",
         f"{slope_per_minute([p for p in mem if p[0] >= duration / 3]):+.3f} MiB/min"),
        ("RSS verdict", verdict),
    ]
    for field, label in (("fds", "open descriptors"), ("threads", "threads")):
        values = [s[field] for s in samples if s[field] is not None]
        if values:
            rows.append((f"{label} start / end / max",
                         f"{values[0]} / {values[-1]} / {max(values)}"))
    return rows


def rss_at(samples, t):
    """The RSS (KiB) of the first sample at or after t seconds."""
    for s in samples:
        if s["elapsed_s"] >= t and s["rss_kib"] is not None:
            return s["rss_kib"]
    return None


def enroll(stub):
    pb, _ = load_stubs()
    try:
        try:
            stub.DeleteSubject(pb.DeleteSubjectRequest(subject=SUBJECT), timeout=30)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
        enrolled = stub.Enroll(pb.EnrollRequest(
            subject=SUBJECT,
            face=[jpeg(photo_bytes(os.path.join(FACES, f))) for f in ENROLL]), timeout=120)
    except grpc.RpcError as e:
        sys.exit(f"cannot enroll {SUBJECT}: {e.code().name}: {e.details()}")
    if not enrolled.face_enrolled:
        sys.exit(f"enrollment of {SUBJECT} stored nothing: {enrolled}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--transport", choices=("unix", "tls"), default="unix",
                   help="the Unix socket (default) or mutual TLS over TCP")
    p.add_argument("--socket", help="vouchd's Unix socket (--transport unix)")
    p.add_argument("--tcp", help="vouchd's TLS listener, HOST:PORT (--transport tls)")
    p.add_argument("--certs", help="the folder of scripts/test-certs.sh (--transport tls)")
    p.add_argument("--terminal", default="till-1",
                   help="the client certificate (and terminal name) over TLS (default till-1)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--duration", type=seconds, default=30.0,
                   help="how long to load: seconds, or 90s, 6m, 1h (default 30)")
    p.add_argument("--method", choices=("verify", "get-subject"), default="verify")
    p.add_argument("--image", default=os.path.join(FACES, "img7.jpg"),
                   help="the face photo to verify (default: img7.jpg of the shared faces, "
                        "1,363×2,048)")
    p.add_argument("--frame", type=frame_size,
                   help="send --image centre-cropped and downscaled to WxH, e.g. 640x480 "
                        "(needs Pillow)")
    p.add_argument("--pid", type=int, help="vouchd's pid, for its memory, descriptors, threads")
    p.add_argument("--metrics", help="vouchd's metrics address, HOST:PORT: the daemon's own "
                   "overhead (request time beyond the library call) is read from it at the end")
    p.add_argument("--sample-every", type=seconds, default=5.0,
                   help="seconds between samples of the daemon (default 5)")
    p.add_argument("--window", type=seconds, default=30.0,
                   help="seconds per printed row of the curve (default 30)")
    p.add_argument("--samples-csv", help="write every sample to this CSV file")
    p.add_argument("--plot", help="draw the RSS curve into this PNG (needs matplotlib)")
    args = p.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.sample_every <= 0 or args.window <= 0:
        p.error("--clients must be at least 1, --duration, --sample-every and --window positive")
    if args.transport == "unix" and not args.socket:
        p.error("--transport unix needs --socket")
    if args.transport == "tls" and not (args.tcp and args.certs):
        p.error("--transport tls needs --tcp and --certs")
    name = os.path.basename(args.image)
    args.probe_label = f"{name}@{args.frame[0]}x{args.frame[1]}" if args.frame else name
    return args


def histogram_quantile(buckets, q):
    """The q-quantile of a Prometheus histogram ([(upper bound, cumulative count)]), by linear
    interpolation inside the bucket that holds it."""
    total = buckets[-1][1]
    if total == 0:
        return None
    rank, lower, below = q * total, 0.0, 0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def overhead_rows(address, method):
    """The daemon's overhead and library time for `method`, from its metrics."""
    import re
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    except OSError as e:
        return [("daemon overhead", f"- (metrics unreadable: {e})")]
    rows = []
    for name, label in (("vouchd_overhead_seconds", "daemon overhead (no wait, no library)"),
                        ("vouchd_queue_seconds", "wait for a worker"),
                        ("vouchd_library_seconds", "library call")):
        buckets = []
        for m in re.finditer(rf'^{name}_bucket{{method="{method}",le="([^"]+)"}} (\d+)$', text, re.M):
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2))))
        if not buckets:
            continue
        p50, p99 = histogram_quantile(buckets, 0.5), histogram_quantile(buckets, 0.99)
        rows.append((f"{label} p50 / p99 (server side)", f"{p50 * 1000:.3f} / {p99 * 1000:.3f} ms"))
    return rows


def main(argv=None):
    args = parse_args(argv)
    pb, rpc = load_stubs()
    data = photo_bytes(args.image, args.frame)
    probe = jpeg(data)
    setup = rpc.VouchStub(connect(args))
    enroll(setup)

    where = args.socket if args.transport == "unix" else f"{args.tcp} (mTLS as {args.terminal})"
    print(f"{args.clients} clients calling {args.method} for {args.duration:g} s over "
          f"{args.transport} on {where}; probe {args.probe_label} ({len(data):,} bytes); "
          f"load average {load1():.2f}", flush=True)
    csv_file = open(args.samples_csv, "w", newline="") if args.samples_csv else None
    if args.plot and not csv_file:
        csv_file = tempfile.NamedTemporaryFile("w", newline="", suffix=".csv", delete=False)
    tally = Tally()
    started = time.monotonic()
    monitor = Monitor(args, tally, started, csv_file)
    monitor.start()
    stop_at = started + args.duration
    # Daemon threads, so that Ctrl-C ends the run at once.
    threads = [threading.Thread(target=client, args=(n, args, probe, stop_at, tally), daemon=True)
               for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    monitor.finish()
    if csv_file:
        csv_file.close()

    # Still serving after the load?
    try:
        setup.GetReceiptKey(pb.GetReceiptKeyRequest(), timeout=10)
        after = "yes"
    except grpc.RpcError as e:
        after = f"NO ({e.code().name}: {e.details()})"

    lat = sorted(lat for _, lat in tally.done)
    ok, busy, errors = tally.counts()
    rows = [
        ("transport", args.transport),
        ("method", args.method),
        ("probe", f"{args.probe_label} ({len(data):,} bytes)"),
        ("clients", str(args.clients)),
        ("elapsed", f"{elapsed:.1f} s"),
        ("calls", str(ok + busy + errors)),
        ("throughput (OK)", f"{ok / elapsed:.2f} /s"),
        ("p50 latency (OK)", f"{percentile(lat, 50) * 1000:.1f} ms"),
        ("p99 latency (OK)", f"{percentile(lat, 99) * 1000:.1f} ms"),
        ("max latency (OK)", f"{lat[-1] * 1000:.1f} ms" if lat else "-"),
        ("OK", str(ok)),
        ("RESOURCE_EXHAUSTED", str(busy)),
    ]
    others = {c: n for c, n in tally.codes.items() if c not in ("OK", "RESOURCE_EXHAUSTED")}
    rows.append(("errors (other codes)",
                 ", ".join(f"{c} {n}" for c, n in sorted(others.items())) or "0"))
    if tally.decisions:
        rows.append(("decisions (OK)",
                     ", ".join(f"{d.removeprefix('DECISION_')} {n}"
                               for d, n in sorted(tally.decisions.items()))))
    samples = monitor.samples
    loads = [s["load1"] for s in samples]
    rows.append(("load average (1 min) min / mean / max",
                 f"{min(loads):.2f} / {sum(loads) / len(loads):.2f} / {max(loads):.2f}"))
    if args.pid:
        warm = min(60.0, args.duration / 3)
        rss = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
        hwm = monitor.proc.status_kib("VmHWM")
        rows += [
            ("daemon RSS at start", f"{mib(rss[0] if rss else None)} MiB"),
            (f"daemon RSS after {warm:.0f} s warm-up", f"{mib(rss_at(samples, warm))} MiB"),
            ("daemon RSS at end", f"{mib(rss[-1] if rss else None)} MiB"),
            (f"daemon peak RSS (sampled every {args.sample_every:g} s)",
             f"{mib(max(rss) if rss else None)} MiB"),
            ("daemon VmHWM", f"{mib(hwm)} MiB" if hwm else "- (process gone)"),
        ]
        rows += growth(samples, args.duration)
    if args.metrics:
        rows += overhead_rows(args.metrics, "Verify" if args.method == "verify" else "GetSubject")
    rows.append(("serving afterwards", after))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    for code, message in sorted(tally.first_errors.items()):
        print(f"  first {code}: {message}")
    if busy:
        print(f"  note: {busy} RESOURCE_EXHAUSTED: the queue (max_in_flight) was full; with fewer"
              " clients than max_in_flight none is expected")
    if args.samples_csv:
        print(f"  samples: {args.samples_csv}")
    if args.plot and plot(csv_file.name, args.plot) and not args.samples_csv:
        os.remove(csv_file.name)

    failed = errors > 0 or after != "yes"
    if failed:
        print(f"FAILED: {errors} error(s){'' if after == 'yes' else ', and not serving afterwards'}",
              file=sys.stderr)
    return 1 if failed else 0


def plot(csv_path, out):
    """Draws the run's RSS curve and says where, or says why not; never fails the
    measurement. True when drawn."""
    import soak_plot
    try:
        soak_plot.plot([csv_path], out)
    except soak_plot.MissingMatplotlib as e:
        print(f"  NO PLOT: {e}. Draw it later with a Python that has it: scripts/soak_plot.py --out {out} "
              f"{csv_path}", file=sys.stderr)
        return False
    print(f"  plot: {out}")
    return True


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted")
