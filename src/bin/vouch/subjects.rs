//! `vouch subjects …`: list, inspect and delete enrolled subjects (metadata only, never
//! vectors).

use anyhow::{Result, bail};
use clap::Subcommand;
use vouch::ValidConfig;
use vouch::vault::TemplateVault;

#[derive(Subcommand)]
pub(crate) enum SubjectsCommand {
    /// Every subject with its template counts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A subject's templates: model, dimension, samples, key, creation time.
    Show {
        /// Subject id.
        subject: String,
    },
    /// Delete every template of a subject.
    Delete {
        /// Subject id.
        subject: String,
    },
}

pub(crate) fn run(cmd: SubjectsCommand, config: &ValidConfig) -> Result<()> {
    let vault = TemplateVault::open(&config.store, &config.keys)?;
    match cmd {
        SubjectsCommand::List { json } => {
            let subjects = vault.subjects()?;
            if json {
                out!("{}", serde_json::to_string_pretty(&subjects)?);
            } else {
                out!(
                    "{:<32} {:>5} {:>5} {:>10}",
                    "subject",
                    "face",
                    "voice",
                    "passphrase"
                );
                for s in &subjects {
                    out!(
                        "{:<32} {:>5} {:>5} {:>10}",
                        s.subject,
                        s.face,
                        s.voice,
                        s.passphrase
                    );
                }
                out!("{} subject(s)", subjects.len());
            }
        }
        SubjectsCommand::Show { subject } => {
            let templates = vault.describe(&subject)?;
            if templates.is_empty() {
                bail!("no subject {subject:?}");
            }
            for (id, info) in templates {
                let h = &info.header;
                out!(
                    "template {id}: {} by {} ({}-d), {} sample(s), quality {:.2}, created {} (unix), key {}",
                    h.modality.as_str(),
                    h.model_id,
                    h.dimension,
                    h.samples,
                    h.quality,
                    h.created_unix,
                    info.key_id
                );
            }
        }
        SubjectsCommand::Delete { subject } => {
            let n = vault.delete_subject(&subject)?;
            if n == 0 {
                bail!("no subject {subject:?}");
            }
            out!("deleted {n} template(s) of {subject}");
        }
    }
    Ok(())
}
