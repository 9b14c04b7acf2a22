//! The payment a CLI decision is for: `--amount`, `--currency`, `--merchant-category`.

use anyhow::{Result, bail};
use clap::Args;
use vouch::authenticator::TransactionContext;
use vouch::policy::Transaction;

/// What is being paid for.
#[derive(Args, Clone, Debug)]
pub(crate) struct TransactionArgs {
    /// Amount in major units, e.g. 12.50 (the policy's tier depends on it).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(crate) amount: f64,
    /// ISO 4217 currency.
    #[arg(long, default_value = "EUR")]
    pub(crate) currency: String,
    /// ISO 18245 merchant category code.
    #[arg(long)]
    pub(crate) merchant_category: Option<String>,
}

impl TransactionArgs {
    /// The transaction, with an id and a nonce made from the clock and a random suffix
    /// (`PREFIX-…`).
    pub(crate) fn context(&self, prefix: &str) -> Result<TransactionContext> {
        if !(self.amount.is_finite() && self.amount >= 0.0) {
            bail!("--amount must be a non-negative number");
        }
        let transaction = Transaction::new(
            (self.amount * 100.0).round() as u64,
            &self.currency,
            self.merchant_category.as_deref(),
        )?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut nonce = [0u8; 8];
        vouch::secure::random(&mut nonce)?;
        Ok(TransactionContext {
            id: format!("{prefix}-{stamp}"),
            nonce: hex::encode(nonce),
            transaction,
        })
    }
}
