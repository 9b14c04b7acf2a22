//! A terminal's replica of the fleet store, kept in step by a background thread.
//!
//! [`Fleet::open`] opens the terminal's SQLite template database as the replica of the fleet's
//! PostgreSQL store ([`SqliteStore::open_replica`]); verifications read the replica only, so
//! they work, equally fast, with the network down. [`Fleet::spawn`] starts the replicator: each
//! round pushes the outbox (local enrollments and deletions, in order, idempotently) and then
//! pulls what other terminals changed; it runs when a local write is recorded, when the fleet
//! store notifies a change (LISTEN/NOTIFY), and every `poll_seconds` in any case. The rules are
//! in [`crate::store::replication`].
//!
//! [`FleetStatus`] says whether the fleet store is reachable: offline once no round has
//! succeeded for `offline_after_seconds` (a terminal that has never reached it is offline). The
//! policy's offline ceiling reads it ([`crate::policy::Connectivity`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use postgres::fallible_iterator::FallibleIterator;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::Ledger;
use crate::store::{PostgresStore, SqliteStore, TemplateStore};

/// `[daemon.fleet]`: the fleet store this terminal replicates.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// libpq-style connection string of the fleet's PostgreSQL store.
    pub postgres_url: String,
    /// Seconds between rounds when nothing wakes the replicator earlier. By default, 5.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// Seconds without a successful round after which the terminal counts as offline. By
    /// default, 15.
    #[serde(default = "default_offline_after_seconds")]
    pub offline_after_seconds: u64,
}

fn default_poll_seconds() -> u64 {
    5
}

fn default_offline_after_seconds() -> u64 {
    15
}

impl FleetConfig {
    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Config, m.to_string()));
        if self.postgres_url.trim().is_empty() {
            return bad("daemon.fleet.postgres_url is empty");
        }
        if !(1..=3600).contains(&self.poll_seconds) {
            return bad("daemon.fleet.poll_seconds must be between 1 and 3600");
        }
        if self.offline_after_seconds < self.poll_seconds {
            return bad("daemon.fleet.offline_after_seconds must be at least poll_seconds");
        }
        Ok(())
    }
}

/// Change-log entries pulled per request.
const PULL_BATCH: usize = 500;
/// Changes pushed per outbox read.
const PUSH_BATCH: usize = 64;
/// How often a waiting replicator looks for a local write or a notification.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The state of a terminal's link to the fleet store.
#[derive(Debug)]
pub struct FleetStatus {
    offline_after: Duration,
    state: Mutex<LinkState>,
}

#[derive(Debug, Default)]
struct LinkState {
    last_success: Option<Instant>,
    last_success_wall: Option<SystemTime>,
    last_error: Option<String>,
    pending: usize,
    cursor: i64,
    head: i64,
}

/// A copy of [`FleetStatus`] at one moment.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FleetSnapshot {
    /// Whether the fleet store counts as reachable.
    pub online: bool,
    /// Seconds since the last successful round (`None`: never).
    pub lag_seconds: Option<f64>,
    /// Local changes not yet in the fleet store.
    pub pending: usize,
    /// The change-log position the replica has applied.
    pub cursor: i64,
    /// The fleet's newest change-log position when last seen.
    pub head: i64,
    /// Why the last round failed, when it did.
    pub last_error: Option<String>,
}

impl FleetStatus {
    /// A status that counts as offline `offline_after` after the last successful round.
    pub fn new(offline_after: Duration) -> FleetStatus {
        FleetStatus {
            offline_after,
            state: Mutex::new(LinkState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the fleet store was reached within `offline_after`.
    pub fn is_online(&self) -> bool {
        self.state()
            .last_success
            .is_some_and(|t| t.elapsed() < self.offline_after)
    }

    /// The status now.
    pub fn snapshot(&self) -> FleetSnapshot {
        let state = self.state();
        FleetSnapshot {
            online: state
                .last_success
                .is_some_and(|t| t.elapsed() < self.offline_after),
            lag_seconds: state.last_success.map(|t| t.elapsed().as_secs_f64()),
            pending: state.pending,
            cursor: state.cursor,
            head: state.head,
            last_error: state.last_error.clone(),
        }
    }

    /// When the last successful round ended (wall clock), if ever.
    pub fn last_success(&self) -> Option<SystemTime> {
        self.state().last_success_wall
    }
}

impl crate::policy::Connectivity for FleetStatus {
    fn offline(&self) -> bool {
        !self.is_online()
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Local changes pushed (applied now or found applied before).
    pub pushed: usize,
    /// Subjects whose set came down from the fleet.
    pub pulled_subjects: usize,
    /// Other terminals' decision events received.
    pub pulled_events: usize,
    /// Whether the replica is at the fleet's head after the round.
    pub caught_up: bool,
}

/// A terminal's replica and its link to the fleet store.
pub struct Fleet {
    replica: Arc<SqliteStore>,
    ledger: Arc<Ledger>,
    status: Arc<FleetStatus>,
    config: FleetConfig,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never shown.
        f.debug_struct("Fleet")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Opens the template database at `sqlite` as terminal `origin`'s replica of the fleet
    /// store `config` names, and the decision state at `state` whose events it exchanges with
    /// the other terminals. Nothing is connected yet: a terminal starts offline as well.
    pub fn open(sqlite: &Path, state: &Path, origin: &str, config: FleetConfig) -> Result<Fleet> {
        config.validate()?;
        if let Some(dir) = sqlite.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("creating the store folder", dir, e))?;
        }
        let replica = Arc::new(SqliteStore::open_replica(sqlite, origin)?);
        let ledger = Arc::new(Ledger::open(state, origin)?);
        let status = Arc::new(FleetStatus::new(Duration::from_secs(
            config.offline_after_seconds,
        )));
        Ok(Fleet {
            replica,
            ledger,
            status,
            config,
        })
    }

    /// The replica, as the vault's store.
    pub fn store(&self) -> Arc<dyn TemplateStore> {
        self.replica.clone()
    }

    /// The replica itself.
    pub fn replica(&self) -> &Arc<SqliteStore> {
        &self.replica
    }

    /// The decision state (attempts, approvals, challenges) the replicator exchanges.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The link's status.
    pub fn status(&self) -> &Arc<FleetStatus> {
        &self.status
    }

    /// A replicator for this replica (run it with [`Replicator::run`], or a round at a time).
    pub fn replicator(&self) -> Replicator {
        Replicator {
            replica: self.replica.clone(),
            ledger: self.ledger.clone(),
            status: self.status.clone(),
            url: self.config.postgres_url.clone(),
            poll: Duration::from_secs(self.config.poll_seconds),
            fleet: None,
            listener: None,
            seen: (0, 0),
        }
    }

    /// Starts the replicator on a thread of its own; it stops (after a last round, so the
    /// outbox is pushed if it can be) once `stop` is set.
    pub fn spawn(&self, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let replicator = self.replicator();
        std::thread::Builder::new()
            .name("vouchd-replica".into())
            .spawn(move || replicator.run(&stop))
            .expect("spawning the replicator thread")
    }
}

/// Pushes and pulls between a replica and the fleet store.
pub struct Replicator {
    replica: Arc<SqliteStore>,
    ledger: Arc<Ledger>,
    status: Arc<FleetStatus>,
    url: String,
    poll: Duration,
    fleet: Option<PostgresStore>,
    listener: Option<postgres::Client>,
    /// The local write counters when the last round began.
    seen: (u64, u64),
}

impl Replicator {
    /// The fleet store, connected (and its schema migrated) on first use. Failures are not
    /// retried here: the next round tries again.
    fn fleet(&mut self) -> Result<&PostgresStore> {
        if self.fleet.is_none() {
            self.fleet = Some(PostgresStore::connect_with(&self.url, Duration::ZERO)?);
        }
        Ok(self.fleet.as_ref().expect("connected above"))
    }

    /// One round: push the outbox, then pull until the replica is at the fleet's head (or a
    /// local write arrives in between; the next round pushes it first).
    pub fn sync_once(&mut self) -> Result<SyncReport> {
        // Before reading the outbox: a write recorded from here on wakes the next round.
        self.seen = (self.replica.recorded(), self.ledger.recorded());
        let outcome = self.round();
        let pending = self.replica.pending_count().unwrap_or(0);
        let mut state = self.status.state();
        state.pending = pending;
        match &outcome {
            Ok((_, cursor, head)) => {
                state.last_success = Some(Instant::now());
                state.last_success_wall = Some(SystemTime::now());
                state.last_error = None;
                state.cursor = *cursor;
                state.head = *head;
            }
            Err(e) => state.last_error = Some(e.to_string()),
        }
        drop(state);
        if outcome.is_err() {
            // A broken link: connect afresh next round.
            self.fleet = None;
            self.listener = None;
        }
        outcome.map(|(report, _, _)| report)
    }

    fn round(&mut self) -> Result<(SyncReport, i64, i64)> {
        let replica = self.replica.clone();
        self.fleet()?;
        let fleet = self.fleet.as_ref().expect("connected above");
        let mut report = SyncReport::default();
        loop {
            let changes = replica.pending(PUSH_BATCH)?;
            if changes.is_empty() {
                break;
            }
            for change in &changes {
                fleet.push(change)?;
                replica.acknowledge(&change.id)?;
                report.pushed += 1;
            }
        }
        let mut cursor = replica.cursor()?;
        let mut head;
        loop {
            let pulled = fleet.pull(cursor, PULL_BATCH)?;
            head = pulled.head;
            if head < cursor {
                // Pulling from here would miss everything up to the cursor, and starting over
                // would delete what this replica holds: a person must look.
                return Err(Error::new(
                    ErrorKind::Store,
                    format!(
                        "the fleet store's change log ends at {head}, before this replica's cursor {cursor}: \
                         was it replaced or restored from an older backup? Until an operator re-creates \
                         the replica, this terminal works offline"
                    ),
                ));
            }
            if pulled.cursor == cursor {
                report.caught_up = cursor >= head;
                break;
            }
            if !replica.apply_pulled(&pulled)? {
                break;
            }
            report.pulled_subjects += pulled.subjects.len();
            cursor = pulled.cursor;
        }
        // The decision events: ours up, the others' down.
        loop {
            let ours = self.ledger.unpushed(PULL_BATCH)?;
            if ours.is_empty() {
                break;
            }
            fleet.push_events(&ours)?;
            let ids: Vec<String> = ours.into_iter().map(|e| e.id).collect();
            self.ledger.mark_pushed(&ids)?;
        }
        loop {
            let from = self.ledger.events_cursor()?;
            let (events, to) = fleet.pull_events(self.ledger.origin(), from, PULL_BATCH)?;
            if to == from {
                break;
            }
            report.pulled_events += self.ledger.apply_pulled(&events, to)?;
        }
        if self.listener.is_none() {
            self.listener = self.fleet.as_ref().and_then(|f| f.listen().ok());
        }
        Ok((report, cursor, head))
    }

    /// Waits until a local write is recorded, the fleet store notifies a change, `poll`
    /// passes or `stop` is set.
    fn wait(&mut self, stop: &AtomicBool) {
        let until = Instant::now() + self.poll;
        while Instant::now() < until
            && !stop.load(Ordering::Relaxed)
            && (self.replica.recorded(), self.ledger.recorded()) == self.seen
        {
            let Some(listener) = self.listener.as_mut() else {
                std::thread::sleep(WAIT_SLICE);
                continue;
            };
            let mut notifications = listener.notifications();
            let next = notifications.timeout_iter(WAIT_SLICE).next();
            match next {
                Ok(Some(_)) => {
                    // Drain what else arrived: one round covers them all.
                    while let Ok(Some(_)) = notifications.iter().next() {}
                    return;
                }
                Err(_) => {
                    drop(notifications);
                    self.listener = None;
                }
                Ok(None) => {}
            }
        }
    }

    /// Rounds until `stop` is set, then one last round.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut was_online = true;
        while !stop.load(Ordering::Relaxed) {
            match self.sync_once() {
                Ok(report) => {
                    if !was_online {
                        tracing::info!("fleet store reachable again");
                    }
                    was_online = true;
                    if report.pushed + report.pulled_subjects > 0 {
                        tracing::info!(
                            pushed = report.pushed,
                            pulled = report.pulled_subjects,
                            "replica synchronised"
                        );
                    }
                }
                Err(e) => {
                    if was_online {
                        tracing::warn!("fleet store unreachable; serving from the replica: {e}");
                    }
                    was_online = false;
                }
            }
            self.wait(stop);
        }
        let _ = self.sync_once();
    }
}
