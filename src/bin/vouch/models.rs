//! `vouch models …`: list the models of the manifest, verify their files, fetch them.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use vouch::ValidConfig;
use vouch::models::{FetchOutcome, FetchSource, fetch_model};
use vouch::runtime::{Runtime, SessionPool};

#[derive(Subcommand)]
pub(crate) enum ModelsCommand {
    /// Show the models in the manifest and whether their files are present.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every model file's sha256 and its inputs and outputs against the manifest.
    Verify,
    /// Copy or download the model files into the model directory, verifying their sha256.
    Fetch {
        /// A directory laid out like the model directory, or an http(s) base URL.
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Where to put them [default: the model directory].
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
}

pub(crate) fn run(cmd: ModelsCommand, config: &ValidConfig) -> Result<()> {
    let manifest = config.models.manifest()?;
    let dir = &config.models.dir;
    match cmd {
        ModelsCommand::List { json } => {
            if json {
                let rows: Vec<_> = manifest
                    .models
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "name": m.name, "id": m.id(), "task": format!("{:?}", m.task),
                            "file": m.file, "sha256": m.sha256, "licence": m.licence,
                            "source": m.source, "present": m.path_in(dir).is_file(),
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                out!("model directory: {}", dir.display());
                out!(
                    "{:<16} {:<18} {:<36} {:<8} licence",
                    "name",
                    "task",
                    "file",
                    "present"
                );
                for m in &manifest.models {
                    let present = if m.path_in(dir).is_file() {
                        "yes"
                    } else {
                        "no"
                    };
                    out!(
                        "{:<16} {:<18} {:<36} {:<8} {}",
                        m.name,
                        format!("{:?}", m.task),
                        m.file.display(),
                        present,
                        m.licence
                    );
                }
            }
        }
        ModelsCommand::Verify => {
            let runtime = Runtime::load(&config.runtime)?;
            let mut failed = 0;
            for spec in &manifest.models {
                match SessionPool::new(&runtime, spec, dir) {
                    Ok(_) => out!("ok      {:<16} sha256 and I/O contract match", spec.name),
                    Err(e) => {
                        failed += 1;
                        out!("FAILED  {:<16} {e}", spec.name);
                    }
                }
            }
            if failed > 0 {
                bail!(
                    "{failed} of {} models failed verification",
                    manifest.models.len()
                );
            }
        }
        ModelsCommand::Fetch { from, to } => {
            let source = FetchSource::parse(&from);
            let dest = to.unwrap_or_else(|| dir.clone());
            for spec in &manifest.models {
                let outcome = fetch_model(spec, &source, &dest)?;
                let what = match outcome {
                    FetchOutcome::AlreadyPresent => "already present",
                    FetchOutcome::Copied => "copied",
                    FetchOutcome::Downloaded => "downloaded",
                    FetchOutcome::MadeByScript => {
                        out!(
                            "{:<16} made by {} (scripts/setup.sh runs it), not fetched",
                            spec.name,
                            spec.made_by.as_deref().unwrap_or("a script")
                        );
                        continue;
                    }
                };
                out!(
                    "{:<16} {what}, sha256 verified ({})",
                    spec.name,
                    spec.path_in(&dest).display()
                );
            }
        }
    }
    Ok(())
}
