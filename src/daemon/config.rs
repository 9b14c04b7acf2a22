//! The daemon's own settings: the `[daemon]` table of its configuration file (the rest of the
//! file is the library's [`Config`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Config, ValidConfig};
use crate::error::{Error, ErrorKind, Result};

/// The gRPC methods, as the allow-lists name them.
pub const METHODS: [&str; 8] = [
    "Enroll",
    "Verify",
    "Identify",
    "Challenge",
    "LivenessChallenge",
    "DeleteSubject",
    "GetSubject",
    "GetReceiptKey",
];

/// `[daemon]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// The Unix socket to serve on; empty to serve on TCP only. By default,
    /// `.vouch/vouchd.sock`.
    pub unix_socket: PathBuf,
    /// The socket file's mode, in octal. By default, `"0660"`: the daemon's user and group.
    pub socket_mode: String,
    /// The terminal identity of clients on the Unix socket. By default, `local`.
    pub socket_terminal: String,
    /// Methods clients on the Unix socket may call. By default, all.
    pub socket_methods: Vec<String>,
    /// TCP with mutual TLS, when set.
    pub tcp: Option<TcpConfig>,
    /// Terminals allowed on TCP, by the common name of their client certificate, with the
    /// methods each may call. A certificate from the right CA whose name is not listed is
    /// refused.
    pub terminals: BTreeMap<String, TerminalConfig>,
    /// Where Prometheus metrics are served (plain HTTP; keep it on loopback). By default,
    /// `127.0.0.1:9464`; empty to turn off.
    pub metrics_listen: String,
    /// Largest request message, in bytes. By default, 16 MiB.
    pub max_message_bytes: usize,
    /// Requests queued or running at once; beyond it, RESOURCE_EXHAUSTED. By default, 16:
    /// with a verification taking ~0.35 s per worker on 2 cores, a longer queue only makes a
    /// till wait seconds (`scripts/load.sh`).
    pub max_in_flight: usize,
    /// Inference worker threads. By default, the number of cores.
    pub workers: usize,
    /// Longest a request may take, in seconds (a client's shorter deadline wins). By
    /// default, 30.
    pub request_timeout_seconds: u64,
    /// Seconds to let in-flight requests finish after SIGTERM. By default, 30.
    pub shutdown_grace_seconds: u64,
    /// This daemon's name in the fleet store. By default, `vouchd`.
    pub origin: String,
    /// Ship the audit log (with its receipts) to PostgreSQL, when set.
    pub ship: Option<ShipConfig>,
    /// Replicate the fleet's templates from PostgreSQL into the local store, when set (the
    /// store becomes this terminal's replica; `origin` names the terminal).
    pub fleet: Option<crate::replica::FleetConfig>,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            unix_socket: PathBuf::from(".vouch/vouchd.sock"),
            socket_mode: "0660".to_string(),
            socket_terminal: "local".to_string(),
            socket_methods: METHODS.iter().map(|m| m.to_string()).collect(),
            tcp: None,
            terminals: BTreeMap::new(),
            metrics_listen: "127.0.0.1:9464".to_string(),
            max_message_bytes: 16 << 20,
            max_in_flight: 16,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
            origin: "vouchd".to_string(),
            ship: None,
            fleet: None,
        }
    }
}

/// `[daemon.tcp]`: TCP with mutual TLS. There is no plain TCP.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// Address to listen on, e.g. `0.0.0.0:7443`.
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM; mode 0600).
    pub key: PathBuf,
    /// The CA that issues terminal certificates (PEM). Clients must present one.
    pub client_ca: PathBuf,
}

/// `[daemon.terminals.NAME]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TerminalConfig {
    /// Methods the terminal may call.
    pub methods: Vec<String>,
}

/// `[daemon.ship]`: offline-first shipping of the audit log.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShipConfig {
    /// libpq-style connection string of the fleet store.
    pub postgres_url: String,
    /// Seconds between attempts. By default, 10.
    #[serde(default = "default_ship_interval")]
    pub interval_seconds: u64,
}

fn default_ship_interval() -> u64 {
    10
}

/// The whole configuration file of `vouchd`.
#[derive(Clone, Debug)]
pub struct DaemonFile {
    /// `[daemon]`.
    pub daemon: DaemonConfig,
    /// Everything else: the library's configuration, validated.
    pub library: ValidConfig,
}

impl DaemonFile {
    /// Reads and validates a configuration file; environment variables override the library
    /// part as they do for the CLI.
    pub fn load(path: &Path) -> Result<DaemonFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("reading the configuration", path, e))?;
        DaemonFile::parse(&text)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// The defaults (and the environment), for running without a file.
    pub fn from_env() -> Result<DaemonFile> {
        let file = DaemonFile {
            daemon: DaemonConfig::default(),
            library: Config::from_env()?.validate()?,
        };
        file.validate()?;
        Ok(file)
    }

    /// Parses a configuration text.
    pub fn parse(text: &str) -> Result<DaemonFile> {
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| Error::new(ErrorKind::Config, format!("not TOML: {}", e.message())))?;
        let daemon = match table.remove("daemon") {
            Some(value) => value.try_into().map_err(|e: toml::de::Error| {
                Error::new(ErrorKind::Config, format!("[daemon]: {}", e.message()))
            })?,
            None => DaemonConfig::default(),
        };
        let rest =
            toml::to_string(&table).map_err(|e| Error::new(ErrorKind::Config, e.to_string()))?;
        let mut library = Config::from_toml(&rest)?;
        library.apply_env()?;
        let file = DaemonFile {
            daemon,
            library: library.validate()?,
        };
        file.validate()?;
        Ok(file)
    }

    /// Checks every value of `[daemon]` (the library's part is a [`ValidConfig`] already).
    pub fn validate(&self) -> Result<()> {
        let d = &self.daemon;
        let bad = |m: String| Err(Error::new(ErrorKind::Config, format!("daemon: {m}")));
        if let Some(fleet) = &d.fleet {
            fleet.validate()?;
        }
        if d.unix_socket.as_os_str().is_empty() && d.tcp.is_none() {
            return bad("nothing to serve on: set unix_socket or [daemon.tcp]".into());
        }
        let mode = d.socket_mode()?;
        if mode & 0o007 != 0 {
            return bad(format!(
                "socket_mode {:o} lets every local user in; use 0660 or stricter",
                mode
            ));
        }
        for method in d
            .socket_methods
            .iter()
            .chain(d.terminals.values().flat_map(|t| &t.methods))
        {
            if !METHODS.contains(&method.as_str()) {
                return bad(format!(
                    "unknown method {method:?} in an allow-list (known: {})",
                    METHODS.join(", ")
                ));
            }
        }
        if d.tcp.is_some() && d.terminals.is_empty() {
            return bad(
                "TCP is on but no [daemon.terminals.NAME] is allowed: every client would be refused"
                    .into(),
            );
        }
        if !d.metrics_listen.is_empty() {
            d.metrics_listen.parse::<SocketAddr>().map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "daemon.metrics_listen {:?} is not an address",
                        d.metrics_listen
                    ),
                )
            })?;
        }
        if !(1024..=1 << 30).contains(&d.max_message_bytes) {
            return bad("max_message_bytes must be between 1 KiB and 1 GiB".into());
        }
        if d.max_in_flight == 0 || d.workers == 0 || d.workers > 256 {
            return bad("max_in_flight must be positive and workers between 1 and 256".into());
        }
        if d.request_timeout_seconds == 0 {
            return bad("request_timeout_seconds must be positive".into());
        }
        crate::store::replication::check_origin(&d.origin)
            .map_err(|e| Error::new(ErrorKind::Config, format!("daemon: {}", e.message())))?;
        if let Some(ship) = &d.ship
            && ship.interval_seconds == 0
        {
            return bad("ship.interval_seconds must be positive".into());
        }
        Ok(())
    }
}

impl DaemonConfig {
    /// The socket mode as a number.
    pub fn socket_mode(&self) -> Result<u32> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "daemon.socket_mode {:?} is not an octal mode",
                        self.socket_mode
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_sections_split() {
        let file =
            DaemonFile::parse("[daemon]\nsocket_mode = \"0600\"\n[face]\ndetect_max_side = 960\n")
                .unwrap();
        assert_eq!(file.daemon.socket_mode().unwrap(), 0o600);
        assert_eq!(file.library.face.detect_max_side, 960);
    }

    #[test]
    fn unsafe_or_unknown_settings_are_refused() {
        for text in [
            "[daemon]\nsocket_mode = \"0666\"\n",
            "[daemon]\nsocket_mode = \"rw\"\n",
            "[daemon]\nsocket_methods = [\"Verify\", \"Launch\"]\n",
            "[daemon]\nworkers = 0\n",
            "[daemon]\nbogus = 1\n",
            "[daemon]\nmetrics_listen = \"nowhere\"\n",
            "[daemon.tcp]\nlisten = \"127.0.0.1:7443\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n",
            "[nonsense]\nx = 1\n",
            "[daemon]\norigin = \"till 7\"\n",
            "[daemon.fleet]\npostgres_url = \"\"\n",
            "[daemon.fleet]\npostgres_url = \"host=db\"\npoll_seconds = 0\n",
            "[daemon.fleet]\npostgres_url = \"host=db\"\npoll_seconds = 30\noffline_after_seconds = 10\n",
            "[daemon.fleet]\npostgres_url = \"host=db\"\nlisten = true\n",
        ] {
            assert!(DaemonFile::parse(text).is_err(), "{text}");
        }
        let fleet = DaemonFile::parse(
            "[daemon]\norigin = \"till-7\"\n[daemon.fleet]\npostgres_url = \"host=db\"\n",
        )
        .unwrap()
        .daemon
        .fleet
        .unwrap();
        assert_eq!((fleet.poll_seconds, fleet.offline_after_seconds), (5, 15));
    }
}
