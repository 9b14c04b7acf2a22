//! `vouchd`: the gRPC daemon a POS terminal talks to. The only module that knows tokio,
//! tonic and prost.
//!
//! It serves `vouch.v1.Vouch` (see `proto/vouch/v1/vouch.proto`), `grpc.health.v1.Health`
//! and server reflection on a Unix socket (mode 0660 by default) and, when configured, on
//! TCP with mutual TLS. Prometheus metrics are on a separate loopback HTTP port. Requests
//! are converted, run on a fixed pool of worker threads (never on the async runtime's
//! threads) behind a bounded queue, and converted back; SIGTERM or SIGINT stop accepting and
//! let in-flight requests finish. SIGXFSZ (a write past `ulimit -f`) is caught, so that such a
//! write fails like a full disk instead of killing the daemon mid-write.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::audit::{AuditEvent, AuditKind};
use crate::authenticator::Authenticator;
use crate::error::{Error, ErrorKind, Result};
use crate::replica::Fleet;

mod auth;
pub mod codec;
pub mod config;
mod metrics;
pub mod requests;
mod service;
mod workers;

pub use config::{DaemonConfig, DaemonFile};
pub use service::{ERROR_KIND_METADATA, VouchService, status_of};

/// The generated protobuf types and gRPC stubs of `vouch.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("vouch.v1");

    /// The encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/vouch_v1_descriptor.bin"));
}

/// Where the daemon ended up listening (ports resolved).
#[derive(Clone, Debug, Default)]
pub struct Bound {
    /// The Unix socket.
    pub unix: Option<PathBuf>,
    /// The TCP (mutual TLS) address.
    pub tcp: Option<SocketAddr>,
    /// The metrics address.
    pub metrics: Option<SocketAddr>,
}

fn io(doing: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let (doing, path) = (doing.to_string(), path.to_path_buf());
    move |e| Error::io(&doing, &path, e)
}

/// Binds the Unix socket with its mode already set: bound under a temporary name, chmod-ed,
/// then renamed into place, so it is never reachable with looser permissions.
fn bind_unix(path: &Path, mode: u32) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("creating the socket folder", dir))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{} is in use by another daemon", path.display()),
                ));
            }
            std::fs::remove_file(path).map_err(io("removing the stale socket", path))?;
        }
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(_) => {}
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = tokio::net::UnixListener::bind(&temporary).map_err(io("binding", &temporary))?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
        .map_err(io("setting the mode of", &temporary))?;
    std::fs::rename(&temporary, path).map_err(io("moving the socket to", path))?;
    Ok(listener)
}

fn tls_config(tcp: &config::TcpConfig) -> Result<ServerTlsConfig> {
    let read = |p: &Path| std::fs::read(p).map_err(io("reading", p));
    crate::secure::check_owner_only_reads(&tcp.key, "key file", ErrorKind::Key)?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(read(&tcp.cert)?, read(&tcp.key)?))
        .client_ca_root(Certificate::from_pem(read(&tcp.client_ca)?))
        .client_auth_optional(false))
}

/// What a daemon serves: the authenticator and, for a fleet terminal, its replica.
#[derive(Debug)]
pub struct Deployment {
    /// The one door every decision goes through.
    pub authenticator: Arc<Authenticator>,
    /// The replica of the fleet store (`[daemon.fleet]`), when configured.
    pub fleet: Option<Fleet>,
}

impl Deployment {
    /// Opens what `file` describes (loading the models: call it off the async runtime). With
    /// `[daemon.fleet]`, the template database is opened as this terminal's replica
    /// (`daemon.origin` names the terminal) and decisions know when the fleet store is
    /// unreachable.
    pub fn open(file: &DaemonFile) -> Result<Deployment> {
        let library = file.library.clone();
        let Some(fleet_config) = &file.daemon.fleet else {
            return Ok(Deployment {
                authenticator: Arc::new(Authenticator::open(library)?),
                fleet: None,
            });
        };
        let fleet = Fleet::open(
            &library.store.sqlite,
            &library.decisions.state_path(),
            &file.daemon.origin,
            fleet_config.clone(),
        )?;
        let vault =
            crate::vault::TemplateVault::over(fleet.store(), &library.store, &library.keys)?;
        let engine = Arc::new(crate::engine::Engine::new(library)?);
        let authenticator = Authenticator::assemble(engine, vault, fleet.ledger().clone())?
            .with_connectivity(fleet.status().clone());
        Ok(Deployment {
            authenticator: Arc::new(authenticator),
            fleet: Some(fleet),
        })
    }
}

/// Keeps the health service's `vouch.v1.Fleet` status in step with the link to the fleet
/// store: SERVING while reachable, NOT_SERVING while the terminal works from its replica alone
/// (it still verifies, within the offline ceilings).
async fn report_fleet_health(
    status: Arc<crate::replica::FleetStatus>,
    health: tonic_health::server::HealthReporter,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut reported = None;
    loop {
        let online = status.is_online();
        if reported != Some(online) {
            let serving = if online {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            health.set_service_status(FLEET_HEALTH, serving).await;
            reported = Some(online);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// The health service name that reports the link to the fleet store.
pub const FLEET_HEALTH: &str = "vouch.v1.Fleet";

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to the grace
/// period). `on_bound` is told where the daemon listens once it does.
pub async fn serve(
    file: DaemonFile,
    deployment: Deployment,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(&Bound) + Send,
) -> Result<()> {
    let Deployment {
        authenticator,
        fleet,
    } = deployment;
    let daemon = file.daemon.clone();
    let workers = Arc::new(workers::WorkerPool::new(
        daemon.workers,
        daemon.max_in_flight,
    ));
    let metrics = Arc::new(metrics::Metrics::default());
    let service = Arc::new(VouchService {
        authenticator: Arc::clone(&authenticator),
        workers: Arc::clone(&workers),
        metrics: Arc::clone(&metrics),
        timeout: Duration::from_secs(daemon.request_timeout_seconds),
    });
    let grpc = || {
        proto::vouch_server::VouchServer::from_arc(Arc::clone(&service))
            .max_decoding_message_size(daemon.max_message_bytes)
            .max_encoding_message_size(daemon.max_message_bytes)
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<proto::vouch_server::VouchServer<VouchService>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| Error::new(ErrorKind::Config, format!("server reflection: {e}")))
    };

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut bound = Bound::default();
    let mut servers = Vec::new();
    let builder = || {
        // The worker pool's bounded queue is the concurrency limit: excess requests get
        // RESOURCE_EXHAUSTED at once rather than waiting on the connection.
        Server::builder()
            .timeout(Duration::from_secs(daemon.request_timeout_seconds))
            .max_concurrent_streams(1024)
    };
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    if !daemon.unix_socket.as_os_str().is_empty() {
        let listener = bind_unix(&daemon.unix_socket, daemon.socket_mode()?)?;
        bound.unix = Some(daemon.unix_socket.clone());
        let router = builder()
            .add_service(health_service.clone())
            .add_service(reflection()?)
            .add_service(InterceptedService::new(
                grpc(),
                auth::unix_interceptor(&daemon),
            ));
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        servers.push(tokio::spawn(
            router.serve_with_incoming_shutdown(incoming, wait(stopped.clone())),
        ));
    }
    if let Some(tcp) = &daemon.tcp {
        let listener = tokio::net::TcpListener::bind(tcp.listen)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("binding {}: {e}", tcp.listen)))?;
        bound.tcp = listener.local_addr().ok();
        let router = builder()
            .tls_config(tls_config(tcp)?)
            .map_err(|e| Error::new(ErrorKind::Config, format!("TLS: {e}")))?
            .add_service(health_service.clone())
            .add_service(reflection()?)
            .add_service(InterceptedService::new(
                grpc(),
                auth::tls_interceptor(&daemon),
            ));
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        servers.push(tokio::spawn(
            router.serve_with_incoming_shutdown(incoming, wait(stopped.clone())),
        ));
    }
    if !daemon.metrics_listen.is_empty() {
        let addr: SocketAddr = daemon
            .metrics_listen
            .parse()
            .map_err(|_| Error::new(ErrorKind::Config, "daemon.metrics_listen"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("binding metrics {addr}: {e}")))?;
        bound.metrics = listener.local_addr().ok();
        let pool = Arc::clone(&workers);
        let link = fleet.as_ref().map(|f| Arc::clone(f.status()));
        tokio::spawn(metrics::serve(
            listener,
            Arc::clone(&metrics),
            move || metrics::Gauges {
                in_flight: pool.in_flight(),
                fleet: link.as_ref().map(|status| status.snapshot()),
            },
            stopped.clone(),
        ));
    }
    // The replicator: its own thread (it blocks on the database), stopped after the servers.
    let stop_replicating = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replicator = fleet.as_ref().map(|fleet| {
        tokio::spawn(report_fleet_health(
            Arc::clone(fleet.status()),
            health.clone(),
            stopped.clone(),
        ));
        fleet.spawn(Arc::clone(&stop_replicating))
    });
    // The shipper has its own stop signal, sent after the last record (the stop) is written,
    // so that its final round ships that record too.
    let (stop_shipping, shipping_stopped) = tokio::sync::watch::channel(false);
    let shipper = daemon.ship.as_ref().map(|ship| {
        spawn_shipper(
            authenticator.audit().path().to_path_buf(),
            daemon.origin.clone(),
            ship.clone(),
            shipping_stopped,
        )
    });
    authenticator.audit().append(
        AuditEvent::new(AuditKind::ServiceStart, "ok")
            .detail("unix", bound.unix.as_ref().map(|p| p.display().to_string()))
            .detail("tcp", bound.tcp.map(|a| a.to_string())),
    )?;
    tracing::info!(?bound, "vouchd serving");
    on_bound(&bound);

    shutdown.await;
    tracing::info!("shutting down: no new requests; letting in-flight ones finish");
    let _ = stop.send(true);
    let grace = Duration::from_secs(daemon.shutdown_grace_seconds);
    for server in servers {
        match tokio::time::timeout(grace, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!("server ended with an error: {e}"),
            Ok(Err(e)) => tracing::error!("server task failed: {e}"),
            Err(_) => tracing::warn!("in-flight requests outlived the grace period"),
        }
    }
    let pool = Arc::clone(&workers);
    let _ = tokio::task::spawn_blocking(move || pool.shutdown()).await;
    if let Some(path) = &bound.unix {
        let _ = std::fs::remove_file(path);
    }
    stop_replicating.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(replicator) = replicator {
        let _ = tokio::task::spawn_blocking(move || replicator.join()).await;
    }
    let stopped_record = authenticator
        .audit()
        .append(AuditEvent::new(AuditKind::ServiceStop, "ok"));
    let _ = stop_shipping.send(true);
    if let Some(shipper) = shipper {
        let _ = tokio::task::spawn_blocking(move || shipper.join()).await;
    }
    stopped_record.map(|_| ())
}

/// Ships the audit log every interval, and once more on the way out.
fn spawn_shipper(
    log: PathBuf,
    origin: String,
    ship: config::ShipConfig,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let shipper = match crate::audit::ship::Shipper::new(&log, &origin, &ship.postgres_url) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("audit shipping is off: {e:#}");
                return;
            }
        };
        loop {
            match shipper.ship_once() {
                Ok(report) if report.shipped > 0 => {
                    tracing::info!(shipped = report.shipped, "audit records shipped")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("audit shipping deferred: {e}"),
            }
            let until = std::time::Instant::now() + Duration::from_secs(ship.interval_seconds);
            while std::time::Instant::now() < until {
                if *stopped.borrow() {
                    let _ = shipper.ship_once();
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    })
}

/// Runs the daemon until SIGTERM or SIGINT: loads everything (every problem surfaces before
/// serving), serves, shuts down gracefully.
pub fn run(file: DaemonFile, on_bound: impl FnOnce(&Bound) + Send) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vouchd-io")
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Io, format!("starting the async runtime: {e}")))?;
    // Before anything is written (opening the store and the audit log may write).
    runtime.block_on(survive_file_size_limits())?;
    let deployment = Deployment::open(&file)?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        serve(file, deployment, shutdown, on_bound).await
    })
}

/// A write past the file-size limit (`RLIMIT_FSIZE`, `ulimit -f`) raises SIGXFSZ, whose
/// default action kills the process (with a core dump) in the middle of whatever it was
/// writing. With a handler installed the write fails with EFBIG instead, which the store and
/// the audit log handle like a full disk: the request is refused, nothing half-written stays.
async fn survive_file_size_limits() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut xfsz = signal(SignalKind::from_raw(libc::SIGXFSZ)).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("installing the SIGXFSZ handler: {e}"),
        )
    })?;
    tokio::spawn(async move {
        while xfsz.recv().await.is_some() {
            tracing::warn!(
                "a write went past the file-size limit (SIGXFSZ); it failed and its request was refused"
            );
        }
    });
    Ok(())
}
