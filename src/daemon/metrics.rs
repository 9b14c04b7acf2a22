//! Prometheus metrics, served as text on a separate (loopback) HTTP port.
//!
//! - `vouchd_requests_total{method, code}`: requests by gRPC method and status code;
//! - `vouchd_decisions_total{method, decision}`: decisions by outcome;
//! - `vouchd_request_seconds{method}`: latency histogram, from the decoded request to the
//!   response;
//! - `vouchd_queue_seconds{method}`: the part spent waiting for a free worker (load);
//! - `vouchd_library_seconds{method}`: the part spent in the library call on a worker;
//! - `vouchd_overhead_seconds{method}`: the rest — the hand-offs between the async runtime
//!   and the worker, the conversions: the daemon's own cost;
//! - `vouchd_velocity_alerts_total{rule}`: payments past an alerting velocity rule;
//! - `vouchd_in_flight`: requests queued or running on the worker pool;
//! - for a fleet terminal: `vouchd_fleet_online` (1 while the fleet store is reachable),
//!   `vouchd_fleet_replica_lag_seconds` (since the replica last synchronised with it),
//!   `vouchd_fleet_outbox_changes` (local writes not yet pushed) and
//!   `vouchd_fleet_changes_behind` (fleet change-log entries not yet applied, when last seen).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bucket bounds in seconds, fine below a millisecond where the daemon's own overhead lies.
const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct State {
    requests: BTreeMap<(&'static str, &'static str), u64>,
    decisions: BTreeMap<(&'static str, &'static str), u64>,
    /// By rule name (the policy's, so a bounded set).
    velocity_alerts: BTreeMap<String, u64>,
    latency: BTreeMap<&'static str, Histogram>,
    queue: BTreeMap<&'static str, Histogram>,
    library: BTreeMap<&'static str, Histogram>,
    overhead: BTreeMap<&'static str, Histogram>,
}

/// The values read when the metrics are scraped.
pub struct Gauges {
    /// Requests queued or running.
    pub in_flight: usize,
    /// The link to the fleet store, for a fleet terminal.
    pub fleet: Option<crate::replica::FleetSnapshot>,
}

/// The daemon's counters.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a finished request: its whole time, and of it the wait for a worker and the
    /// library call's (`None` when the request never reached a worker).
    pub fn request(
        &self,
        method: &'static str,
        code: tonic::Code,
        elapsed: Duration,
        worked: Option<(Duration, Duration)>,
    ) {
        let mut state = self.state();
        *state.requests.entry((method, code_name(code))).or_default() += 1;
        state.latency.entry(method).or_default().observe(elapsed);
        if let Some((waited, library)) = worked {
            state.queue.entry(method).or_default().observe(waited);
            state.library.entry(method).or_default().observe(library);
            state
                .overhead
                .entry(method)
                .or_default()
                .observe(elapsed.saturating_sub(waited + library));
        }
    }

    /// Counts a decision.
    pub fn decision(&self, method: &'static str, decision: &'static str) {
        *self
            .state()
            .decisions
            .entry((method, decision))
            .or_default() += 1;
    }

    /// Counts a payment past an alerting velocity rule.
    pub fn velocity_alert(&self, rule: &str) {
        *self
            .state()
            .velocity_alerts
            .entry(rule.to_string())
            .or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let state = self.state();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP vouchd_requests_total gRPC requests by method and status code."
        );
        let _ = writeln!(out, "# TYPE vouchd_requests_total counter");
        for ((method, code), n) in &state.requests {
            let _ = writeln!(
                out,
                "vouchd_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouchd_decisions_total Decisions by method and outcome."
        );
        let _ = writeln!(out, "# TYPE vouchd_decisions_total counter");
        for ((method, decision), n) in &state.decisions {
            let _ = writeln!(
                out,
                "vouchd_decisions_total{{method=\"{method}\",decision=\"{decision}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouchd_velocity_alerts_total Payments past an alerting velocity rule, by rule."
        );
        let _ = writeln!(out, "# TYPE vouchd_velocity_alerts_total counter");
        for (rule, n) in &state.velocity_alerts {
            let _ = writeln!(out, "vouchd_velocity_alerts_total{{rule=\"{rule}\"}} {n}");
        }
        for (name, help, histograms) in [
            (
                "vouchd_request_seconds",
                "Request latency, from the decoded request to the response.",
                &state.latency,
            ),
            (
                "vouchd_queue_seconds",
                "Time waiting for a free worker.",
                &state.queue,
            ),
            (
                "vouchd_library_seconds",
                "Time in the library call on a worker.",
                &state.library,
            ),
            (
                "vouchd_overhead_seconds",
                "Request latency beyond the wait and the library call: hand-offs, conversions.",
                &state.overhead,
            ),
        ] {
            render_histograms(&mut out, name, help, histograms);
        }
        let _ = writeln!(
            out,
            "# HELP vouchd_in_flight Requests queued or running on the workers."
        );
        let _ = writeln!(out, "# TYPE vouchd_in_flight gauge");
        let _ = writeln!(out, "vouchd_in_flight {}", gauges.in_flight);
        if let Some(fleet) = &gauges.fleet {
            let lag = fleet.lag_seconds.unwrap_or(f64::INFINITY);
            for (name, help, value) in [
                (
                    "vouchd_fleet_online",
                    "1 while the fleet store is reachable.",
                    f64::from(u8::from(fleet.online)),
                ),
                (
                    "vouchd_fleet_replica_lag_seconds",
                    "Seconds since the replica last synchronised with the fleet store (+Inf: never).",
                    lag,
                ),
                (
                    "vouchd_fleet_outbox_changes",
                    "Local enrollments and deletions not yet in the fleet store.",
                    fleet.pending as f64,
                ),
                (
                    "vouchd_fleet_changes_behind",
                    "Fleet change-log entries not yet applied, when last seen.",
                    (fleet.head - fleet.cursor).max(0) as f64,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} gauge");
                if value.is_infinite() {
                    let _ = writeln!(out, "{name} +Inf");
                } else {
                    let _ = writeln!(out, "{name} {value}");
                }
            }
        }
        out
    }
}

fn render_histograms(
    out: &mut String,
    name: &str,
    help: &str,
    histograms: &BTreeMap<&'static str, Histogram>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (method, h) in histograms {
        for (bound, n) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{method=\"{method}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{method=\"{method}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{method=\"{method}\"}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{method=\"{method}\"}} {}", h.count);
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` (any path, in fact) until `shutdown` resolves. A minimal HTTP/1.0
/// responder: Prometheus needs nothing more, and the port is meant for loopback.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    gauges: impl Fn() -> Gauges + Send + Sync + 'static,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let gauges = std::sync::Arc::new(gauges);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                let metrics = std::sync::Arc::clone(&metrics);
                let gauges = std::sync::Arc::clone(&gauges);
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request)).await;
                    if !matches!(read, Ok(Ok(n)) if n > 0) {
                        return;
                    }
                    let body = metrics.render(&gauges());
                    let response = format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }
    }
}
