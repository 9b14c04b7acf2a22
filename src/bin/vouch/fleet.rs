//! `vouch fleet status`: whether a terminal's replica holds what the fleet store holds.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use vouch::ValidConfig;
use vouch::store::{PostgresStore, SqliteStore};

#[derive(Subcommand)]
pub(crate) enum FleetCommand {
    /// Compare a terminal's replica with the fleet store: templates, subjects, a digest of
    /// their contents, the changes not yet pushed and the change log not yet pulled. Exits 1
    /// when they differ with nothing left to push (a replica behind, or diverged).
    Status {
        /// The fleet store (libpq key=value or URL form).
        #[arg(long, value_name = "URL")]
        postgres_url: String,
        /// The replica [default: the configuration's store.sqlite].
        #[arg(long, value_name = "FILE")]
        replica: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: FleetCommand, config: &ValidConfig) -> Result<()> {
    let FleetCommand::Status {
        postgres_url,
        replica,
        json,
    } = cmd;
    let path = replica.unwrap_or_else(|| config.store.sqlite.clone());
    if !path.is_file() {
        bail!("no template database at {}", path.display());
    }
    let replica = SqliteStore::open(&path)?;
    let origin = replica
        .origin()
        .map(str::to_string)
        .with_context(|| format!("{} is not a fleet replica", path.display()))?;
    let fleet = PostgresStore::connect_with(&postgres_url, std::time::Duration::ZERO)?;
    let (local, remote) = (replica.content_digest()?, fleet.content_digest()?);
    let pending = replica.pending_count()?;
    let cursor = replica.cursor()?;
    let head = fleet.pull(cursor, 1)?.head;
    let in_step = local == remote;
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "origin": origin,
                "replica": local,
                "fleet": remote,
                "outbox_changes": pending,
                "cursor": cursor,
                "fleet_head": head,
                "in_step": in_step,
            }))?
        );
    } else {
        out!("replica of {origin}: {}", path.display());
        for (name, d) in [("replica", &local), ("fleet store", &remote)] {
            out!(
                "  {name:<12} {:>7} templates {:>7} subjects  {}",
                d.templates,
                d.subjects,
                d.sha256
            );
        }
        out!("  outbox       {pending} change(s) not yet pushed");
        out!("  change log   applied up to {cursor}, the fleet's head is {head}");
        out!(
            "  {}",
            if in_step {
                "in step"
            } else {
                "differs (in step after the next rounds if the daemon is replicating)"
            }
        );
    }
    if !in_step && pending == 0 && cursor >= head {
        bail!("the replica differs from the fleet store with nothing left to push or pull");
    }
    Ok(())
}
