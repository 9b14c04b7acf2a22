//! Risk policy: which factors a transaction needs, and at which operating point.
//!
//! A policy is an ordered list of tiers (TOML). The first tier that matches the transaction's
//! currency, merchant category and amount decides: either the factors required (face, liveness,
//! voice passphrase) and the target false-match rate their thresholds are set at, or a refusal.
//! A transaction no tier matches is refused: the policy fails closed.
//!
//! The built-in policy ([`Policy::builtin`], `policy/default.toml`) follows the spirit of PSD2
//! strong customer authentication: small amounts need face and liveness; larger ones add the
//! spoken passphrase at a stricter operating point; above a ceiling the terminal must use
//! another method.
//!
//! ```
//! use vouch::policy::{Factor, Policy, Requirement, Transaction};
//!
//! let policy = Policy::builtin();
//! let coffee = Transaction::new(450, "EUR", None).unwrap();
//! match policy.requirement(&coffee) {
//!     Requirement::Verify { factors, .. } => assert!(!factors.contains(&Factor::Voice)),
//!     Requirement::Refuse { .. } => unreachable!(),
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");
const POLICY_VERSION: u32 = 1;

/// An authentication factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Factor {
    /// Face match against the enrolled template.
    Face,
    /// Passive liveness on the face frames.
    Liveness,
    /// Spoken passphrase: the challenge's digits in the enrolled voice.
    Voice,
    /// Active liveness: the head movements of a random, single-use challenge, made by one
    /// face with the parallax of a head ([`crate::face::motion`]).
    #[serde(rename = "active_liveness")]
    ActiveLiveness,
}

impl Factor {
    /// The factor's name (`face`, `liveness`, `voice`, `active_liveness`), as policies, receipts and the API
    /// write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Face => "face",
            Factor::Liveness => "liveness",
            Factor::Voice => "voice",
            Factor::ActiveLiveness => "active_liveness",
        }
    }
}

/// What is being paid for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transaction {
    /// Amount in the currency's minor unit (cents for EUR).
    pub amount_minor: u64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// ISO 18245 merchant category code (4 digits), when the terminal gives one.
    pub merchant_category: Option<String>,
}

impl Transaction {
    /// A transaction, its codes checked.
    pub fn new(
        amount_minor: u64,
        currency: &str,
        merchant_category: Option<&str>,
    ) -> Result<Transaction> {
        if !is_currency(currency) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{currency:?} is not an ISO 4217 currency code (three capital letters)"),
            ));
        }
        if let Some(mcc) = merchant_category
            && !is_mcc(mcc)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{mcc:?} is not a merchant category code (four digits)"),
            ));
        }
        Ok(Transaction {
            amount_minor,
            currency: currency.to_string(),
            merchant_category: merchant_category.map(str::to_string),
        })
    }
}

fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_mcc(code: &str) -> bool {
    code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit())
}

/// One tier of a policy file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Name, reported in decisions (e.g. `"small"`).
    pub name: String,
    /// Currencies the tier applies to; `"*"` for any. By default, any.
    #[serde(default = "any_currency")]
    pub currencies: Vec<String>,
    /// Merchant categories the tier applies to; empty for any. By default, any.
    #[serde(default)]
    pub merchant_categories: Vec<String>,
    /// Largest amount (minor units, inclusive) the tier covers; absent for no bound.
    #[serde(default)]
    pub max_amount_minor: Option<u64>,
    /// Refuse matching transactions (the terminal must use another method).
    #[serde(default)]
    pub refuse: bool,
    /// Factors required (unless `refuse`).
    #[serde(default)]
    pub factors: Vec<Factor>,
    /// Target false-match rate the match thresholds are set at (unless `refuse`).
    #[serde(default)]
    pub target_fmr: Option<f64>,
    /// The speaker check's own operating point, when looser than `target_fmr` is wanted.
    /// Every verifying tier requires the face at `target_fmr`, and a decision needs every
    /// factor, so the decision's false-match rate stays at most `target_fmr` whatever the
    /// voice threshold; the voice adds its own independent barrier on top. By default,
    /// `target_fmr`.
    #[serde(default)]
    pub voice_target_fmr: Option<f64>,
    /// Hold the face to the calibrated fusion of every configured embedder's score
    /// (`face.embedder` and `face.fused_embedders`) instead of the embedder's alone: fewer
    /// genuine customers refused at the same FMR, for the cost of one more embedding. A
    /// customer enrolled before the fused embedders were configured is asked to re-enroll on
    /// such a tier only. By default, false.
    #[serde(default)]
    pub face_fusion: bool,
    /// The largest amount (minor units, inclusive) a terminal may approve while it cannot
    /// reach the fleet store; above it an offline terminal answers `reject` with reason
    /// `offline_limit` (the customer pays another way, or once the terminal is back online).
    /// Absent: the tier's own bound.
    #[serde(default)]
    pub offline_max_amount_minor: Option<u64>,
}

/// Whether this terminal can reach its fleet store: a risk input (an offline terminal sees
/// neither other terminals' deletions nor their velocity counts until it syncs).
pub trait Connectivity: Send + Sync {
    /// Whether the terminal is offline now.
    fn offline(&self) -> bool;
}

/// A terminal with no fleet store: never offline (everything it knows is local).
#[derive(Clone, Copy, Debug, Default)]
pub struct Standalone;

impl Connectivity for Standalone {
    fn offline(&self) -> bool {
        false
    }
}

fn any_currency() -> Vec<String> {
    vec!["*".to_string()]
}

impl Tier {
    fn matches(&self, t: &Transaction) -> bool {
        let currency = self.currencies.iter().any(|c| c == "*" || *c == t.currency);
        let category = self.merchant_categories.is_empty()
            || t.merchant_category
                .as_ref()
                .is_some_and(|m| self.merchant_categories.contains(m));
        let amount = self
            .max_amount_minor
            .is_none_or(|max| t.amount_minor <= max);
        currency && category && amount
    }
}

/// What a transaction requires.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requirement {
    /// Verify these factors at this operating point.
    Verify {
        /// The tier that matched.
        tier: String,
        /// Required factors, sorted.
        factors: Vec<Factor>,
        /// Target false-match rate.
        target_fmr: f64,
        /// The speaker check's target false-match rate (see [`Tier::voice_target_fmr`]).
        voice_target_fmr: f64,
        /// Whether the face is held to the fused score of every configured embedder (see
        /// [`Tier::face_fusion`]).
        face_fusion: bool,
        /// The tier's offline ceiling (see [`Tier::offline_max_amount_minor`]).
        offline_max_amount_minor: Option<u64>,
    },
    /// Do not verify biometrically; the terminal must use another method.
    Refuse {
        /// The tier that matched, or `None` when no tier did.
        tier: Option<String>,
    },
}

/// Whose payments a velocity rule counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VelocityScope {
    /// The customer's, on every terminal of the fleet whose events have reached this one.
    #[default]
    Subject,
    /// This terminal's, whoever paid.
    Terminal,
}

/// What a velocity rule does when a payment would go past its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VelocityAction {
    /// Require the rule's `step_up_factors` on top of the tier's.
    StepUp,
    /// Refuse the payment (`reject`, reason `velocity_limit`).
    Refuse,
    /// Decide as usual; name the rule in the decision's alerts, its audit record and a metric.
    Alert,
}

/// A velocity rule (`[[velocity]]` in a policy file): a limit on the approved payments of a
/// customer or a terminal over a sliding window, or since the customer's last strong
/// authentication (an approval that used a factor beyond face and liveness). A payment that
/// would go past any of the rule's limits triggers its action.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityRule {
    /// Name, reported in decisions and audit records (e.g. `"daily-amount"`).
    pub name: String,
    /// Whose payments count. By default, the customer's.
    #[serde(default)]
    pub per: VelocityScope,
    /// The sliding window of `max_approvals` and `max_amount_minor`, in seconds. By default,
    /// 86,400 (a day).
    #[serde(default = "one_day")]
    pub window_seconds: u64,
    /// Most approvals in the window (this payment included).
    #[serde(default)]
    pub max_approvals: Option<u32>,
    /// Largest cumulative amount in the window, in minor units of the payment's currency
    /// (this payment included; payments in other currencies are not added).
    #[serde(default)]
    pub max_amount_minor: Option<u64>,
    /// Most approvals since the last strong one (this payment included): PSD2's "five
    /// transactions" (customer rules only).
    #[serde(default)]
    pub max_approvals_since_strong: Option<u32>,
    /// Largest cumulative amount since the last strong approval: PSD2's "EUR 150" (customer
    /// rules only).
    #[serde(default)]
    pub max_amount_since_strong_minor: Option<u64>,
    /// What happens to a payment past a limit.
    pub action: VelocityAction,
    /// The factors a step-up requires. By default, the spoken passphrase.
    #[serde(default = "voice_factor")]
    pub step_up_factors: Vec<Factor>,
}

fn one_day() -> u64 {
    86_400
}

fn voice_factor() -> Vec<Factor> {
    vec![Factor::Voice]
}

/// How far back velocity rules may look (and the decision state keeps payments): 31 days.
pub const VELOCITY_HORIZON_SECONDS: u64 = 31 * 86_400;

impl VelocityRule {
    fn validate(&self) -> std::result::Result<(), String> {
        let name = &self.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!(
                "velocity rule name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        if self.max_approvals.is_none()
            && self.max_amount_minor.is_none()
            && self.max_approvals_since_strong.is_none()
            && self.max_amount_since_strong_minor.is_none()
        {
            return Err(format!("velocity rule {name:?} sets no limit"));
        }
        if !(60..=VELOCITY_HORIZON_SECONDS).contains(&self.window_seconds) {
            return Err(format!(
                "velocity rule {name:?}: window_seconds must be between 60 and {VELOCITY_HORIZON_SECONDS}"
            ));
        }
        if self.per == VelocityScope::Terminal
            && (self.max_approvals_since_strong.is_some()
                || self.max_amount_since_strong_minor.is_some())
        {
            return Err(format!(
                "velocity rule {name:?}: the limits since a strong authentication are the customer's (per = \"subject\")"
            ));
        }
        if self.action == VelocityAction::StepUp {
            if self.step_up_factors.is_empty() {
                return Err(format!("velocity rule {name:?} steps up to no factor"));
            }
            if self.step_up_factors.contains(&Factor::Face)
                || self.step_up_factors.contains(&Factor::Liveness)
            {
                return Err(format!(
                    "velocity rule {name:?}: a step-up adds voice or active_liveness (face and liveness are always required)"
                ));
            }
        }
        Ok(())
    }
}

/// A validated policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    tiers: Vec<Tier>,
    velocity: Vec<VelocityRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    #[serde(rename = "tier")]
    tiers: Vec<Tier>,
    #[serde(default)]
    velocity: Vec<VelocityRule>,
}

impl Policy {
    /// The built-in policy (`policy/default.toml`).
    pub fn builtin() -> Policy {
        // Checked by a unit test, so this cannot fail in a release.
        Policy::parse(DEFAULT_POLICY)
            .unwrap_or_else(|e| unreachable!("the built-in policy is invalid: {e}"))
    }

    /// Reads a policy file.
    pub fn load(path: &std::path::Path) -> Result<Policy> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading the policy", path, e))?;
        Policy::parse(&text)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// Parses and validates a policy.
    pub fn parse(text: &str) -> Result<Policy> {
        let bad = |why: String| Error::new(ErrorKind::Config, format!("policy: {why}"));
        let file: PolicyFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.version != POLICY_VERSION {
            return Err(bad(format!(
                "version {}; this vouch reads version {POLICY_VERSION}",
                file.version
            )));
        }
        if file.tiers.is_empty() {
            return Err(bad("no tiers".into()));
        }
        let mut tiers = file.tiers;
        for tier in &mut tiers {
            let name = &tier.name;
            if name.is_empty() || name.len() > 64 {
                return Err(bad("a tier name has 1 to 64 characters".into()));
            }
            if let Some(c) = tier
                .currencies
                .iter()
                .find(|c| *c != "*" && !is_currency(c))
            {
                return Err(bad(format!(
                    "tier {name:?}: {c:?} is not a currency code or \"*\""
                )));
            }
            if tier.currencies.is_empty() {
                return Err(bad(format!(
                    "tier {name:?}: no currencies (use \"*\" for any)"
                )));
            }
            if let Some(m) = tier.merchant_categories.iter().find(|m| !is_mcc(m)) {
                return Err(bad(format!(
                    "tier {name:?}: {m:?} is not a merchant category code"
                )));
            }
            if tier.refuse {
                if !tier.factors.is_empty()
                    || tier.target_fmr.is_some()
                    || tier.voice_target_fmr.is_some()
                    || tier.offline_max_amount_minor.is_some()
                    || tier.face_fusion
                {
                    return Err(bad(format!(
                        "tier {name:?} refuses, so it takes no factors, target_fmr, face_fusion or offline ceiling"
                    )));
                }
                continue;
            }
            tier.factors.sort();
            tier.factors.dedup();
            if !tier.factors.contains(&Factor::Face) {
                return Err(bad(format!(
                    "tier {name:?}: every verifying tier needs the face factor (liveness and voice build on it)"
                )));
            }
            match tier.target_fmr {
                Some(f) if f > 0.0 && f <= 0.01 => {}
                _ => {
                    return Err(bad(format!(
                        "tier {name:?}: target_fmr must be in (0, 0.01]"
                    )));
                }
            }
            if let Some(v) = tier.voice_target_fmr
                && !(tier.factors.contains(&Factor::Voice) && v > 0.0 && v <= 0.1)
            {
                return Err(bad(format!(
                    "tier {name:?}: voice_target_fmr needs the voice factor and must be in (0, 0.1]"
                )));
            }
        }
        for (i, rule) in file.velocity.iter().enumerate() {
            rule.validate().map_err(bad)?;
            if file.velocity[..i].iter().any(|r| r.name == rule.name) {
                return Err(bad(format!("two velocity rules named {:?}", rule.name)));
            }
        }
        Ok(Policy {
            tiers,
            velocity: file.velocity,
        })
    }

    /// The tiers, in order.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The velocity rules.
    pub fn velocity(&self) -> &[VelocityRule] {
        &self.velocity
    }

    /// The policy without its velocity rules (a benchmark that repeats one customer's
    /// payment, a research deployment).
    pub fn without_velocity(mut self) -> Policy {
        self.velocity.clear();
        self
    }

    /// What `transaction` requires: the first matching tier's, or a refusal when none matches.
    pub fn requirement(&self, transaction: &Transaction) -> Requirement {
        match self.tiers.iter().find(|t| t.matches(transaction)) {
            Some(t) if t.refuse => Requirement::Refuse {
                tier: Some(t.name.clone()),
            },
            Some(t) => Requirement::Verify {
                tier: t.name.clone(),
                factors: t.factors.clone(),
                target_fmr: t.target_fmr.unwrap_or(1e-4),
                voice_target_fmr: t.voice_target_fmr.or(t.target_fmr).unwrap_or(1e-4),
                face_fusion: t.face_fusion,
                offline_max_amount_minor: t.offline_max_amount_minor,
            },
            None => Requirement::Refuse { tier: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(amount: u64, currency: &str, mcc: Option<&str>) -> Transaction {
        Transaction::new(amount, currency, mcc).unwrap()
    }

    fn tier_of(r: &Requirement) -> Option<&str> {
        match r {
            Requirement::Verify { tier, .. } => Some(tier),
            Requirement::Refuse { tier } => tier.as_deref(),
        }
    }

    #[test]
    fn the_builtin_policy_steps_up_with_the_amount() {
        let p = Policy::builtin();
        let small = p.requirement(&tx(4_999, "EUR", None));
        let Requirement::Verify {
            factors,
            target_fmr,
            ..
        } = &small
        else {
            panic!("{small:?}")
        };
        assert_eq!(factors, &[Factor::Face, Factor::Liveness]);
        let large = p.requirement(&tx(80_000, "EUR", Some("5411")));
        let Requirement::Verify {
            factors: large_factors,
            target_fmr: large_fmr,
            ..
        } = &large
        else {
            panic!("{large:?}")
        };
        assert!(large_factors.contains(&Factor::Voice));
        assert!(large_fmr < target_fmr);
        assert!(matches!(
            p.requirement(&tx(10_000_000, "EUR", None)),
            Requirement::Refuse { tier: Some(_) }
        ));
        // Gambling is never paid by face.
        assert!(matches!(
            p.requirement(&tx(100, "EUR", Some("7995"))),
            Requirement::Refuse { .. }
        ));
    }

    #[test]
    fn the_first_matching_tier_wins_and_no_match_fails_closed() {
        let p = Policy::parse(
            r#"
            version = 1
            [[tier]]
            name = "fuel"
            currencies = ["GBP"]
            merchant_categories = ["5542"]
            factors = ["face", "liveness", "face"]
            target_fmr = 0.001
            [[tier]]
            name = "gbp-small"
            currencies = ["GBP"]
            max_amount_minor = 3000
            factors = ["liveness", "face"]
            target_fmr = 0.001
            "#,
        )
        .unwrap();
        assert_eq!(
            tier_of(&p.requirement(&tx(90_000, "GBP", Some("5542")))),
            Some("fuel")
        );
        let small = p.requirement(&tx(3_000, "GBP", Some("5411")));
        assert_eq!(tier_of(&small), Some("gbp-small"));
        assert!(
            matches!(small, Requirement::Verify { ref factors, .. } if factors == &[Factor::Face, Factor::Liveness])
        );
        assert_eq!(
            p.requirement(&tx(3_001, "GBP", None)),
            Requirement::Refuse { tier: None }
        );
        assert_eq!(
            p.requirement(&tx(10, "EUR", None)),
            Requirement::Refuse { tier: None }
        );
    }

    #[test]
    fn bad_policies_and_transactions_are_refused_with_reasons() {
        for (text, says) in [
            (
                "version = 2\n[[tier]]\nname = \"a\"\nrefuse = true",
                "version 2",
            ),
            ("version = 1\ntier = []", "no tiers"),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nfactors = [\"voice\"]\ntarget_fmr = 0.001",
                "face factor",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nfactors = [\"face\"]",
                "target_fmr",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nfactors = [\"face\"]\ntarget_fmr = 0.5",
                "target_fmr",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\ncurrencies = [\"euro\"]\nrefuse = true",
                "currency",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nmerchant_categories = [\"59\"]\nrefuse = true",
                "merchant category",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nrefuse = true\nfactors = [\"face\"]",
                "refuses",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nfactors = [\"iris\"]",
                "iris",
            ),
            (
                "version = 1\n[[tier]]\nname = \"a\"\nrefuse = true\nceiling = 3",
                "ceiling",
            ),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(says), "{says}: {e}");
        }
        assert!(Transaction::new(1, "eur", None).is_err());
        assert!(Transaction::new(1, "EUR", Some("12345")).is_err());
    }

    #[test]
    fn bad_velocity_rules_and_offline_ceilings_are_refused_with_reasons() {
        let tier =
            "version = 1\n[[tier]]\nname = \"a\"\nfactors = [\"face\"]\ntarget_fmr = 0.001\n";
        for (extra, says) in [
            ("[[velocity]]\nname = \"r\"\naction = \"alert\"", "no limit"),
            (
                "[[velocity]]\nname = \"two words\"\nmax_approvals = 3\naction = \"alert\"",
                "letters, digits",
            ),
            (
                "[[velocity]]\nname = \"r\"\nmax_approvals = 3\nwindow_seconds = 10\naction = \"alert\"",
                "window_seconds",
            ),
            (
                "[[velocity]]\nname = \"r\"\nper = \"terminal\"\nmax_approvals_since_strong = 5\naction = \"alert\"",
                "customer's",
            ),
            (
                "[[velocity]]\nname = \"r\"\nmax_approvals = 3\naction = \"step_up\"\nstep_up_factors = [\"liveness\"]",
                "voice or active_liveness",
            ),
            (
                "[[velocity]]\nname = \"r\"\nmax_approvals = 3\naction = \"step_up\"\nstep_up_factors = []",
                "no factor",
            ),
            (
                "[[velocity]]\nname = \"r\"\nmax_approvals = 3\naction = \"alert\"\n[[velocity]]\nname = \"r\"\nmax_approvals = 4\naction = \"refuse\"",
                "two velocity rules",
            ),
            (
                "[[velocity]]\nname = \"r\"\nmax_approvals = 3\naction = \"block\"",
                "block",
            ),
            (
                "[[tier]]\nname = \"b\"\nrefuse = true\noffline_max_amount_minor = 100",
                "offline ceiling",
            ),
            (
                "[[tier]]\nname = \"b\"\nrefuse = true\nface_fusion = true",
                "face_fusion",
            ),
            (
                "[[tier]]\nname = \"b\"\nface_fusion = \"yes\"",
                "face_fusion",
            ),
        ] {
            let e = Policy::parse(&format!("{tier}{extra}")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(says), "{says}: {e}");
        }
        let fine = Policy::parse(&format!(
            "{tier}offline_max_amount_minor = 100\n[[velocity]]\nname = \"daily.count-2\"\nmax_approvals = 3\naction = \"alert\""
        ))
        .unwrap();
        assert_eq!(fine.velocity().len(), 1);
        assert!(fine.clone().without_velocity().velocity().is_empty());
        let Requirement::Verify {
            offline_max_amount_minor,
            ..
        } = fine.requirement(&Transaction::new(50, "EUR", None).unwrap())
        else {
            panic!("a verifying tier")
        };
        assert_eq!(offline_max_amount_minor, Some(100));
        assert!(!Policy::builtin().velocity().is_empty());
        // The built-in large tier holds the face to the fused score, the small one does not.
        let fused = |amount: u64| match Policy::builtin()
            .requirement(&Transaction::new(amount, "EUR", None).unwrap())
        {
            Requirement::Verify { face_fusion, .. } => face_fusion,
            Requirement::Refuse { .. } => panic!("a verifying tier"),
        };
        assert!(!fused(1_000) && fused(100_000));
    }
}
