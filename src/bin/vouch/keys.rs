//! `vouch keys …`: create the key file, rotate to a new key, re-seal the stored templates.

use anyhow::{Result, bail};
use clap::Subcommand;
use vouch::ValidConfig;
use vouch::template::{Kek, KeyProvider, Keyring};
use vouch::vault::TemplateVault;

use crate::progress;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key file (mode 0600) with one fresh 256-bit key.
    Generate {
        /// Id of the key [default: key-YYYYMMDD-HHMMSS].
        #[arg(long)]
        id: Option<String>,
        /// Also create a renewable-template transform key (ISO/IEC 24745).
        #[arg(long)]
        renewable: bool,
    },
    /// Add a new key, make it current, and re-seal every stored template under it.
    Rotate {
        /// Id of the new key [default: key-YYYYMMDD-HHMMSS].
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-seal templates not yet under the current key (resumes an interrupted rotation).
    Reseal,
}

pub(crate) fn run(cmd: KeysCommand, config: &ValidConfig) -> Result<()> {
    let path = &config.keys.file;
    match cmd {
        KeysCommand::Generate { id, renewable } => {
            if path.exists() {
                bail!(
                    "{} already exists; keys are never overwritten (use `vouch keys rotate`)",
                    path.display()
                );
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut ring = Keyring::generate(&id.unwrap_or_else(new_key_id))?;
            if renewable {
                ring.add_transform_key()?;
            }
            ring.save(path)?;
            out!(
                "wrote {} (mode 0600): key {}{}",
                path.display(),
                ring.current_key_id(),
                if renewable {
                    " and a renewable-template transform key"
                } else {
                    ""
                }
            );
        }
        KeysCommand::Rotate { id } => {
            let mut ring = Keyring::load(path)?;
            let id = id.unwrap_or_else(new_key_id);
            ring.rotate_to(&id, Kek::generate()?)?;
            // The new key is saved before any template uses it, so no template is ever sealed
            // under a key that is not on disk.
            ring.save(path)?;
            out!("key {id} is now current in {}", path.display());
            reseal(config)?;
        }
        KeysCommand::Reseal => reseal(config)?,
    }
    Ok(())
}

fn new_key_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("key-{secs}")
}

fn reseal(config: &ValidConfig) -> Result<()> {
    let vault = TemplateVault::open(&config.store, &config.keys)?;
    let total: usize = vault.subjects()?.iter().map(|s| s.face + s.voice).sum();
    let bar = progress(total, "re-sealing");
    let report = vault.rotate(&mut || bar.inc(1))?;
    bar.finish_and_clear();
    out!(
        "re-sealed {} template(s) ({} changed by another writer meanwhile)",
        report.resealed,
        report.skipped
    );
    Ok(())
}
