//! `vouch receipt …` and `vouch audit …`: wiring and printing over `vouch::receipt` and
//! `vouch::audit`. Every check is the library's; an invalid receipt or a broken chain is an
//! error (exit status 1) that says what is wrong.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use vouch::audit::ship::Shipper;
use vouch::audit::{ChainBreak, verify_file};
use vouch::receipt::{ReceiptSigner, parse_public_key, verify_receipt};

/// Where `vouch audit ship` reads the PostgreSQL URL when `--postgres-url` is not given (keeps
/// a password out of the process list).
const ENV_AUDIT_POSTGRES_URL: &str = "VOUCH_AUDIT_POSTGRES_URL";

#[derive(Subcommand)]
pub(crate) enum ReceiptCommand {
    /// Create a receipt signing key (Ed25519; mode 0600, never overwritten) and write its
    /// public key beside it, to FILE.pub.
    Keygen {
        /// Where to write the secret key.
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check a receipt's signature and print what it says.
    Verify {
        /// The receipt: a file holding its text, or - for stdin.
        receipt: String,
        /// The signer's public key: 64 hex digits, or a file holding them.
        #[arg(long, value_name = "HEX|FILE")]
        public_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify an audit log's hash chain and print its head (compare it with a receipt's
    /// audit_head or the shipped copy: a chain alone cannot show its tail was cut off).
    Verify {
        /// The audit log (JSON lines).
        log: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy the records written since the last run to PostgreSQL (table vouch_audit).
    Ship {
        /// The audit log (JSON lines); the cursor is kept beside it in LOG.shipped.
        log: PathBuf,
        /// The id the records are stored under: this terminal's or daemon's.
        #[arg(long)]
        origin: String,
        /// PostgreSQL URL (libpq key=value or URL form) [default: $VOUCH_AUDIT_POSTGRES_URL].
        #[arg(long, value_name = "URL")]
        postgres_url: Option<String>,
    },
}

pub(crate) fn run_receipt(cmd: ReceiptCommand) -> Result<()> {
    match cmd {
        ReceiptCommand::Keygen { out } => keygen(&out),
        ReceiptCommand::Verify {
            receipt,
            public_key,
            json,
        } => verify(&receipt, &public_key, json),
    }
}

pub(crate) fn run_audit(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Verify { log, json } => audit_verify(&log, json),
        AuditCommand::Ship {
            log,
            origin,
            postgres_url,
        } => {
            let url = match postgres_url {
                Some(url) => url,
                None => std::env::var(ENV_AUDIT_POSTGRES_URL).map_err(|_| {
                    anyhow!(
                        "no PostgreSQL URL: pass --postgres-url or set ${ENV_AUDIT_POSTGRES_URL}"
                    )
                })?,
            };
            let report = Shipper::new(&log, &origin, &url)?
                .ship_once()
                .map_err(plain)?;
            out!(
                "shipped {} record(s) of {} as {origin} ({} already on the server); shipped up to record {}",
                report.shipped,
                log.display(),
                report.already_present,
                report.up_to_seq
            );
            Ok(())
        }
    }
}

fn keygen(out: &Path) -> Result<()> {
    let mut public_path = out.as_os_str().to_owned();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    // Checked first, so a key is never created without its public half.
    if public_path.exists() {
        bail!(
            "{} already exists; choose another key path",
            public_path.display()
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let signer = ReceiptSigner::generate(out)?;
    std::fs::write(
        &public_path,
        format!(
            "# vouch receipt public key (Ed25519), key id {}\n{}\n",
            signer.key_id(),
            signer.public_key_hex()
        ),
    )
    .with_context(|| format!("writing {}", public_path.display()))?;
    out!(
        "wrote {} (mode 0600) and {}",
        out.display(),
        public_path.display()
    );
    out!("key id      {}", signer.key_id());
    out!("public key  {}", signer.public_key_hex());
    Ok(())
}

fn verify(receipt: &str, public_key: &str, json: bool) -> Result<()> {
    let text = if receipt == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the receipt from stdin")?;
        text
    } else {
        std::fs::read_to_string(receipt).with_context(|| format!("reading {receipt}"))?
    };
    let key = parse_public_key(public_key)?;
    match verify_receipt(&text, &key) {
        Ok(receipt) => {
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "valid": true,
                        "key_id": vouch::receipt::key_id(&key),
                        "receipt": receipt,
                    }))?
                );
            } else {
                out!(
                    "valid receipt signed by key {}",
                    vouch::receipt::key_id(&key)
                );
                out!("id           {}", receipt.id);
                out!("issued       {} (unix seconds)", receipt.issued_unix);
                out!("decision     {}", receipt.decision);
                if !receipt.reasons.is_empty() {
                    out!("reasons      {}", receipt.reasons.join(", "));
                }
                out!("subject      {}", receipt.subject);
                out!("terminal     {}", receipt.terminal);
                out!(
                    "transaction  {} (nonce {})",
                    receipt.transaction_id,
                    receipt.nonce
                );
                out!(
                    "amount       {} {} (minor units){}",
                    receipt.amount_minor,
                    receipt.currency,
                    receipt
                        .merchant_category
                        .as_deref()
                        .map(|m| format!(", merchant category {m}"))
                        .unwrap_or_default()
                );
                out!("factors      {}", receipt.factors.join(", "));
                out!("models       {}", receipt.models.join(", "));
                if let Some(tier) = &receipt.policy_tier {
                    out!("policy tier  {tier}");
                }
                if let Some(head) = &receipt.audit_head {
                    out!("audit head   {head}");
                }
            }
            Ok(())
        }
        Err(err) => {
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "valid": false,
                        "kind": err.kind().as_str(),
                        "error": err.to_string(),
                    }))?
                );
            }
            Err(plain(err))
        }
    }
}

fn audit_verify(log: &Path, json: bool) -> Result<()> {
    match verify_file(log) {
        Ok(summary) => {
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "valid": true,
                        "summary": summary,
                    }))?
                );
            } else {
                out!(
                    "valid chain: {} record(s) in {}",
                    summary.records,
                    log.display()
                );
                if let (Some(first), Some(last)) = (summary.first_time, summary.last_time) {
                    out!("from {first} to {last} (unix milliseconds)");
                }
                out!("head {}", summary.head);
                if summary.torn_tail {
                    out!(
                        "note: the last line is incomplete (a write in progress, or a crash mid-write); it was never acknowledged and is not counted"
                    );
                }
            }
            Ok(())
        }
        Err(err) => {
            if json {
                let line = ChainBreak::of(&err).map(ChainBreak::line);
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "valid": false,
                        "kind": err.kind().as_str(),
                        "line": line,
                        "error": err.to_string(),
                    }))?
                );
            }
            Err(plain(err))
        }
    }
}

/// The error as its message alone: a chain break's message already says everything its
/// typed source does, and `error: {:#}` would print it twice.
fn plain(err: vouch::Error) -> anyhow::Error {
    anyhow!("{err}")
}
