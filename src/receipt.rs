//! Signed verification receipts: what vouch decided for one payment, signed with Ed25519.
//!
//! A receipt lets anyone holding the public key (the acquirer, a dispute desk, an auditor)
//! check after the fact which decision was made for which transaction, by which terminal,
//! under which models and policy tier, without trusting the channel it came through. It names
//! the subject and the transaction and never carries biometric data: no image, audio, vector,
//! score or template byte.
//!
//! # Text format, version 1
//!
//! ```text
//! vouch-receipt.v1.<key id>.<payload>.<signature>
//! ```
//!
//! - `vouch-receipt` is the magic and `v1` the format version.
//! - `<key id>` is 16 lowercase hex digits: the first 8 bytes of SHA-256 over the 32-byte
//!   Ed25519 public key ([`key_id`]). It tells a verifier holding several keys which one to use.
//! - `<payload>` is the [`Receipt`] as JSON (UTF-8), encoded base64url without padding.
//! - `<signature>` is the 64-byte Ed25519 signature, base64url without padding, over the ASCII
//!   bytes `vouch-receipt.v1.<key id>.<payload>`: exactly the characters that precede the last
//!   dot. The signature covers the bytes that travel, so the JSON needs no canonical form, and
//!   the magic, version and key id are bound with the payload.
//!
//! The text uses only `A-Z a-z 0-9 - _ .`, so it fits a QR code, a URL or a log line as is.
//! Verification ([`verify_receipt`]) uses `verify_strict`, which refuses non-canonical
//! signatures and small-order public keys, so a receipt has one valid encoding per signature.
//! A fixture of every version ever written is kept in `fixtures/formats/` and read back by a
//! test.
//!
//! # Keys
//!
//! The signing key lives in a file readable by its owner only (mode 0600): comment lines
//! starting with `#`, then the 32-byte Ed25519 secret as 64 hex digits. [`ReceiptSigner`]
//! refuses to load a file that group or others can read, wipes the key from memory when
//! dropped and never prints it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// The receipt format version this library writes and reads.
pub const RECEIPT_VERSION: u32 = 1;

/// What every version-1 receipt starts with.
const PREFIX: &str = "vouch-receipt.v1.";

/// The decisions a version-1 receipt can record.
pub const DECISIONS: [&str; 5] = ["accept", "reject", "step_up", "retake", "locked"];

/// Longer texts are refused before any decoding: a real receipt is well under 4 KiB.
const MAX_RECEIPT_LEN: usize = 16 * 1024;

// The secret key is wiped on drop only while ed25519-dalek's `zeroize` feature is on: a build
// that lost it fails here rather than silently leaving keys in freed memory.
const _: fn() = || {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<SigningKey>();
};

/// What vouch decided for one transaction: the signed content of a receipt.
///
/// Holds identifiers and decisions only, never biometric data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The receipt format version ([`RECEIPT_VERSION`]).
    pub version: u32,
    /// A random 128-bit id, 32 lowercase hex digits: unique per receipt.
    pub id: String,
    /// When the decision was made, in seconds since the Unix epoch.
    pub issued_unix: i64,
    /// The subject (customer) the decision is about.
    pub subject: String,
    /// The terminal that asked for the decision.
    pub terminal: String,
    /// The payment transaction's id, as the terminal named it.
    pub transaction_id: String,
    /// The terminal's transaction nonce, binding the receipt to this one attempt.
    pub nonce: String,
    /// The amount in the currency's minor unit (cents for EUR).
    pub amount_minor: u64,
    /// The ISO 4217 alphabetic currency code (three capital letters).
    pub currency: String,
    /// The ISO 18245 merchant category code, when the terminal sent one.
    pub merchant_category: Option<String>,
    /// The decision: one of [`DECISIONS`] (`accept`, `reject`, `step_up`, `retake`, `locked`).
    pub decision: String,
    /// Why, as short machine-readable reasons (e.g. `face_below_threshold`).
    pub reasons: Vec<String>,
    /// The factors that were used (e.g. `face`, `liveness`, `voice`).
    pub factors: Vec<String>,
    /// The ids of the models that were run.
    pub models: Vec<String>,
    /// The risk-policy tier that set the required factors, when a policy applied.
    pub policy_tier: Option<String>,
    /// The hash of the last audit record written before this decision (64 hex digits): it
    /// anchors the audit log, which cannot lose that record without the receipt showing it.
    pub audit_head: Option<String>,
    /// The decision was made by a terminal that could not reach its fleet store (from its
    /// replica, under the policy's offline ceiling): the backend settles it as an offline
    /// payment. Absent when false, so online receipts read as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offline: bool,
}

impl Receipt {
    /// A receipt for a decision made now, with a fresh random id, no reasons, factors or
    /// models, and no merchant category, policy tier or audit head (set those fields as
    /// needed before signing).
    pub fn new(
        subject: &str,
        terminal: &str,
        transaction_id: &str,
        nonce: &str,
        amount_minor: u64,
        currency: &str,
        decision: &str,
    ) -> Result<Receipt> {
        let mut id = [0u8; 16];
        crate::secure::random(&mut id)?;
        let issued_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ok(Receipt {
            version: RECEIPT_VERSION,
            id: hex::encode(id),
            issued_unix,
            subject: subject.to_string(),
            terminal: terminal.to_string(),
            transaction_id: transaction_id.to_string(),
            nonce: nonce.to_string(),
            amount_minor,
            currency: currency.to_string(),
            merchant_category: None,
            decision: decision.to_string(),
            reasons: Vec::new(),
            factors: Vec::new(),
            models: Vec::new(),
            policy_tier: None,
            audit_head: None,
            offline: false,
        })
    }

    /// What makes this receipt unfit to sign or to accept, if anything.
    fn problem(&self) -> Option<String> {
        let is_hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if self.version != RECEIPT_VERSION {
            return Some(format!(
                "receipt version {} is not supported (this vouch reads version {RECEIPT_VERSION})",
                self.version
            ));
        }
        if !is_hex(&self.id, 32) {
            return Some("the receipt id must be 32 lowercase hex digits".into());
        }
        for (name, value) in [
            ("subject", &self.subject),
            ("terminal", &self.terminal),
            ("transaction_id", &self.transaction_id),
            ("nonce", &self.nonce),
        ] {
            if value.is_empty() {
                return Some(format!("the receipt's {name} is empty"));
            }
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Some(format!(
                "currency {:?} is not an ISO 4217 code (three capital letters)",
                self.currency
            ));
        }
        if !DECISIONS.contains(&self.decision.as_str()) {
            return Some(format!(
                "decision {:?} is not one of {}",
                self.decision,
                DECISIONS.join(", ")
            ));
        }
        if let Some(head) = &self.audit_head
            && !is_hex(head, 64)
        {
            return Some("the audit head must be 64 lowercase hex digits".into());
        }
        None
    }
}

/// The key id of a public key: the first 8 bytes of its SHA-256, as 16 lowercase hex digits.
pub fn key_id(public_key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public_key.as_bytes())[..8])
}

/// Signs receipts with an Ed25519 key. The key is wiped from memory on drop and redacted in
/// `Debug`.
pub struct ReceiptSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("key_id", &self.key_id)
            .field("secret", &"redacted")
            .finish()
    }
}

impl ReceiptSigner {
    fn from_secret(secret: &[u8; 32]) -> ReceiptSigner {
        let key = SigningKey::from_bytes(secret);
        let key_id = key_id(&key.verifying_key());
        ReceiptSigner { key, key_id }
    }

    /// Creates a fresh key from the operating system's CSPRNG and writes it to `path`, readable
    /// by its owner only (mode 0600). An existing file is never overwritten.
    pub fn generate(path: &Path) -> Result<ReceiptSigner> {
        let mut secret = Zeroizing::new([0u8; 32]);
        crate::secure::random(secret.as_mut())?;
        ReceiptSigner::write_key_file(path, &secret)
    }

    /// Writes the key file of `secret` (the format [`ReceiptSigner::load`] reads).
    fn write_key_file(path: &Path, secret: &[u8; 32]) -> Result<ReceiptSigner> {
        let signer = ReceiptSigner::from_secret(secret);
        let text = Zeroizing::new(format!(
            "# vouch receipt signing key (Ed25519 secret, hex). Keep this file private (mode 0600).\n\
             # key id {}, public key {}\n{}\n",
            signer.key_id,
            signer.public_key_hex(),
            hex::encode(secret)
        ));
        write_new_private(path, text.as_bytes())?;
        Ok(signer)
    }

    /// Reads a key file written by [`ReceiptSigner::generate`]. Refused when the file can be
    /// read by anyone but its owner.
    pub fn load(path: &Path) -> Result<ReceiptSigner> {
        crate::secure::check_owner_only_reads(path, "key file", ErrorKind::Key)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Key,
                format!("cannot read receipt key file {}: {e}", path.display()),
            )
        })?);
        let mut secret = Zeroizing::new([0u8; 32]);
        let hex_text = only_value_line(&text).ok_or_else(|| malformed_key_file(path))?;
        hex::decode_to_slice(hex_text, secret.as_mut()).map_err(|_| malformed_key_file(path))?;
        Ok(ReceiptSigner::from_secret(&secret))
    }

    /// The public key, for verifiers.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as 64 lowercase hex digits.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The key id ([`key_id`] of the public key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `receipt` into the version-1 text format (see the module docs). A receipt with
    /// another version, an unknown decision, a malformed id, currency or audit head, or an
    /// empty subject, terminal, transaction id or nonce is refused ([`ErrorKind::InvalidInput`]).
    pub fn sign(&self, receipt: &Receipt) -> Result<String> {
        if let Some(problem) = receipt.problem() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("cannot sign the receipt: {problem}"),
            ));
        }
        let payload = serde_json::to_vec(receipt).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot encode the receipt: {e}"),
            )
        })?;
        Ok(self.sign_payload(&payload))
    }

    /// The text for raw payload bytes: also how tests make well-signed bad payloads.
    fn sign_payload(&self, payload: &[u8]) -> String {
        let mut text = format!(
            "{PREFIX}{}.{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.key.sign(text.as_bytes());
        text.push('.');
        text.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        text
    }
}

/// Writes a new key file readable by its owner only, atomically, never replacing an existing
/// one (a half-written key file can never be mistaken for a key).
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::secure::write_atomic(
        path,
        bytes,
        crate::secure::Access::Private,
        crate::secure::Existing::Keep,
    )
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::new(
                ErrorKind::Key,
                format!(
                    "{} already exists; a key file is never overwritten (choose another path)",
                    path.display()
                ),
            )
        } else {
            Error::io("writing", path, e)
        }
    })
}

/// The one line of a key file that is neither blank nor a `#` comment.
fn only_value_line(text: &str) -> Option<&str> {
    let mut values = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

fn malformed_key_file(path: &Path) -> Error {
    Error::new(
        ErrorKind::Key,
        format!(
            "receipt key file {} is malformed: it must hold one line of 64 hex digits (an Ed25519 secret key) besides # comments",
            path.display()
        ),
    )
}

/// Parses an Ed25519 public key given as 64 hex digits, or as the path of a file holding them
/// (`#` comment lines allowed). Malformed and small-order (weak) keys are refused
/// ([`ErrorKind::Key`]).
pub fn parse_public_key(hex_or_file: &str) -> Result<VerifyingKey> {
    let given = hex_or_file.trim();
    let mut bytes = [0u8; 32];
    if hex::decode_to_slice(given, &mut bytes).is_err() {
        let path = Path::new(given);
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Key,
                format!(
                    "the public key is neither 64 hex digits nor a readable file ({}: {e})",
                    path.display()
                ),
            )
        })?;
        let malformed = || {
            Error::new(
                ErrorKind::Key,
                format!(
                    "public key file {} must hold one line of 64 hex digits besides # comments",
                    path.display()
                ),
            )
        };
        let line = only_value_line(&text).ok_or_else(malformed)?;
        hex::decode_to_slice(line, &mut bytes).map_err(|_| malformed())?;
    }
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
        Error::new(
            ErrorKind::Key,
            "the public key is not a valid Ed25519 point",
        )
    })?;
    if key.is_weak() {
        return Err(Error::new(
            ErrorKind::Key,
            "the public key has small order: it would accept forged signatures",
        ));
    }
    Ok(key)
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::ReceiptInvalid, format!("invalid receipt: {why}"))
}

/// Checks a receipt's text against `public_key` and returns what it says.
///
/// Leading and trailing white space is ignored. Every failure is
/// [`ErrorKind::ReceiptInvalid`] with a message saying what was wrong: not a receipt, another
/// version, another key's id, a malformed or non-matching signature (the text was altered),
/// or a payload that is not a valid version-1 receipt. The payload is decoded only after the
/// signature has been verified.
pub fn verify_receipt(text: &str, public_key: &VerifyingKey) -> Result<Receipt> {
    let text = text.trim();
    if text.len() > MAX_RECEIPT_LEN {
        return Err(invalid(format!(
            "{} bytes is longer than any receipt ({MAX_RECEIPT_LEN} at most)",
            text.len()
        )));
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.first() != Some(&"vouch-receipt") {
        return Err(invalid("it does not start with `vouch-receipt.`"));
    }
    if parts.get(1) != Some(&"v1") {
        let version = parts.get(1).copied().unwrap_or_default();
        return Err(invalid(format!(
            "version {version:?} is not supported (this vouch reads v1)"
        )));
    }
    let [_, _, id, payload, signature] = parts[..] else {
        return Err(invalid(format!(
            "it has {} dot-separated parts; a v1 receipt has 5: vouch-receipt.v1.<key id>.<payload>.<signature> (was it cut short?)",
            parts.len()
        )));
    };
    let expected_id = key_id(public_key);
    if id != expected_id {
        return Err(invalid(format!(
            "it names signing key {id:?}, but the given public key's id is {expected_id}"
        )));
    }
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            invalid("the signature is not 64 bytes of base64url (was the text altered or cut?)")
        })?;
    let signed = &text[..text.len() - parts[4].len() - 1];
    public_key
        .verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| {
            invalid("the signature does not match: the receipt was altered after signing")
        })?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| invalid("the payload is not base64url"))?;
    let receipt: Receipt = serde_json::from_slice(&payload).map_err(|e| {
        invalid(format!(
            "the signed payload is not a version-1 receipt: {e}"
        ))
    })?;
    if let Some(problem) = receipt.problem() {
        return Err(invalid(problem));
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the committed fixture: the secret 0x07 × 32. Never used outside tests.
    fn fixture_signer() -> ReceiptSigner {
        ReceiptSigner::from_secret(&[7u8; 32])
    }

    fn fixture_receipt() -> Receipt {
        Receipt {
            version: 1,
            id: "5f0c3b2a9d8e7f60112233445566778a".into(),
            issued_unix: 1_790_000_000,
            subject: "alice".into(),
            terminal: "pos-0042".into(),
            transaction_id: "tx-20261122-0001".into(),
            nonce: "n-8c1f2e".into(),
            amount_minor: 12_550,
            currency: "EUR".into(),
            merchant_category: Some("5411".into()),
            decision: "accept".into(),
            reasons: vec!["face_match".into(), "live".into()],
            factors: vec!["face".into(), "liveness".into()],
            models: vec!["mobilefacenet-w600k".into(), "minifasnet-v2".into()],
            policy_tier: Some("sca-low".into()),
            audit_head: Some("ab".repeat(32)),
            offline: false,
        }
    }

    #[test]
    fn an_offline_decision_says_so_and_an_online_one_reads_as_before() {
        let signer = fixture_signer();
        let online = serde_json::to_string(&fixture_receipt()).unwrap();
        assert!(!online.contains("offline"), "{online}");
        let mut offline = fixture_receipt();
        offline.offline = true;
        let text = signer.sign(&offline).unwrap();
        let read = verify_receipt(&text, &signer.verifying_key()).unwrap();
        assert!(read.offline);
    }

    fn fixture_path(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/formats")
            .join(name)
    }

    /// Writes `fixtures/formats/receipt-key-v1.txt`, the key file of the fixture secret, as
    /// [`ReceiptSigner::generate`] writes one (by hand, if the key file ever gets a new layout:
    /// `cargo test --lib receipt::tests::write_key_file_fixture -- --ignored`).
    #[test]
    #[ignore = "writes a fixture; run by hand when a format version is added"]
    fn write_key_file_fixture() {
        let path = fixture_path("receipt-key-v1.txt");
        let _ = std::fs::remove_file(&path);
        ReceiptSigner::write_key_file(&path, &[7u8; 32]).unwrap();
    }

    #[test]
    fn the_v1_key_file_fixture_still_loads() {
        // A checkout leaves the fixture readable by all, which `load` refuses for a secret:
        // it is read from an owner-only copy, as a deployment keeps it.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("receipt.key");
        std::fs::copy(fixture_path("receipt-key-v1.txt"), &copy).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let signer = ReceiptSigner::load(&copy).unwrap();
        assert_eq!(signer.public_key_hex(), fixture_signer().public_key_hex());
        assert_eq!(signer.key_id(), fixture_signer().key_id());
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let signer = ReceiptSigner::from_secret(&[1u8; 32]);
        let mut receipt =
            Receipt::new("bob", "pos-1", "tx-1", "nonce-1", 999, "USD", "step_up").unwrap();
        receipt.reasons.push("amount_above_tier".into());
        receipt.audit_head = Some("00".repeat(32));
        let text = signer.sign(&receipt).unwrap();
        assert!(text.starts_with(&format!("vouch-receipt.v1.{}.", signer.key_id())));
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        );
        assert_eq!(
            verify_receipt(&text, &signer.verifying_key()).unwrap(),
            receipt
        );
        // As read from a file, with a trailing newline.
        assert_eq!(
            verify_receipt(&format!("{text}\n"), &signer.verifying_key()).unwrap(),
            receipt
        );
        // Fresh ids: two receipts for the same decision differ.
        let again = Receipt::new("bob", "pos-1", "tx-1", "nonce-1", 999, "USD", "step_up").unwrap();
        assert_ne!(again.id, receipt.id);
    }

    #[test]
    fn every_flipped_bit_of_the_text_is_refused() {
        let signer = fixture_signer();
        let text = signer.sign(&fixture_receipt()).unwrap();
        let key = signer.verifying_key();
        let mut tried = 0;
        for at in 0..text.len() {
            for bit in 0..8 {
                let mut bytes = text.clone().into_bytes();
                bytes[at] ^= 1 << bit;
                // A flip to a non-ASCII byte is not UTF-8; the lossy form is still a changed text.
                let changed = String::from_utf8_lossy(&bytes).into_owned();
                let err = verify_receipt(&changed, &key).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::ReceiptInvalid, "byte {at} bit {bit}");
                tried += 1;
            }
        }
        assert_eq!(tried, text.len() * 8);
    }

    #[test]
    fn another_key_is_refused_even_under_its_own_id() {
        let text = fixture_signer().sign(&fixture_receipt()).unwrap();
        let other = ReceiptSigner::from_secret(&[8u8; 32]);
        let err = verify_receipt(&text, &other.verifying_key()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ReceiptInvalid);
        assert!(err.to_string().contains("signing key"), "{err}");
        // The other key's id pasted in: the id now matches, the signature cannot.
        let forged = text.replace(fixture_signer().key_id(), other.key_id());
        let err = verify_receipt(&forged, &other.verifying_key()).unwrap_err();
        assert!(
            err.to_string().contains("signature does not match"),
            "{err}"
        );
    }

    #[test]
    fn other_versions_are_refused() {
        let signer = fixture_signer();
        let text = signer.sign(&fixture_receipt()).unwrap();
        let v2 = text.replacen(".v1.", ".v2.", 1);
        let err = verify_receipt(&v2, &signer.verifying_key()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ReceiptInvalid);
        assert!(err.to_string().contains("\"v2\" is not supported"), "{err}");

        // A correctly signed v1 text whose payload claims version 2.
        let mut future = serde_json::to_value(fixture_receipt()).unwrap();
        future["version"] = 2.into();
        let text = signer.sign_payload(&serde_json::to_vec(&future).unwrap());
        let err = verify_receipt(&text, &signer.verifying_key()).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");

        // Signing refuses what verifying would refuse.
        let mut receipt = fixture_receipt();
        receipt.version = 2;
        assert_eq!(
            signer.sign(&receipt).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn well_signed_but_malformed_payloads_are_refused() {
        let signer = fixture_signer();
        let key = signer.verifying_key();
        let mut extra = serde_json::to_value(fixture_receipt()).unwrap();
        extra["score"] = 0.93.into();
        let mut bad_decision = fixture_receipt();
        bad_decision.decision = "maybe".into();
        let cases = [
            (serde_json::to_vec(&extra).unwrap(), "unknown field"),
            (b"not json".to_vec(), "not a version-1 receipt"),
            (
                serde_json::to_vec(&bad_decision).unwrap(),
                "decision \"maybe\"",
            ),
        ];
        for (payload, says) in cases {
            let err = verify_receipt(&signer.sign_payload(&payload), &key).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ReceiptInvalid);
            assert!(err.to_string().contains(says), "{err}");
        }
        assert_eq!(
            signer.sign(&bad_decision).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let signer = fixture_signer();
        let text = signer.sign(&fixture_receipt()).unwrap();
        for cut in 0..text.len() {
            let err = verify_receipt(&text[..cut], &signer.verifying_key()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ReceiptInvalid, "cut at {cut}");
        }
        let err = verify_receipt(&"A".repeat(MAX_RECEIPT_LEN + 1), &signer.verifying_key());
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("longer than any receipt")
        );
    }

    #[test]
    fn key_files_round_trip_are_never_overwritten_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.key");
        let signer = ReceiptSigner::generate(&path).unwrap();
        let loaded = ReceiptSigner::load(&path).unwrap();
        assert_eq!(loaded.public_key_hex(), signer.public_key_hex());
        assert_eq!(loaded.key_id(), signer.key_id());
        assert_eq!(signer.key_id(), key_id(&signer.verifying_key()));
        assert_eq!(signer.key_id().len(), 16);
        let text = signer.sign(&fixture_receipt()).unwrap();
        verify_receipt(&text, &loaded.verifying_key()).unwrap();

        let before = std::fs::read(&path).unwrap();
        let err = ReceiptSigner::generate(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Key);
        assert!(err.to_string().contains("never overwritten"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = ReceiptSigner::load(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Key);
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn malformed_key_files_are_key_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            String::new(),
            "# only a comment\n".into(),
            "abcd\n".into(),
            format!("{}\n{}\n", "11".repeat(32), "22".repeat(32)),
            format!("{}zz\n", "11".repeat(31)),
        ];
        for (i, text) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.key"));
            write_new_private(&path, text.as_bytes()).unwrap();
            let err = ReceiptSigner::load(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Key, "case {i}");
            assert!(!err.to_string().contains(&"11".repeat(8)), "{err}");
        }
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let signer = fixture_signer();
        let debug = format!("{signer:?}");
        assert!(debug.contains("redacted") && debug.contains(signer.key_id()));
        assert!(!debug.contains("0707"), "{debug}");
        assert!(!debug.contains("7, 7"), "{debug}");
    }

    #[test]
    fn public_keys_parse_from_hex_or_file() {
        let signer = fixture_signer();
        let hex_key = signer.public_key_hex();
        assert_eq!(parse_public_key(&hex_key).unwrap(), signer.verifying_key());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.pub");
        std::fs::write(&path, format!("# a comment\n{hex_key}\n")).unwrap();
        assert_eq!(
            parse_public_key(path.to_str().unwrap()).unwrap(),
            signer.verifying_key()
        );
        for bad in ["", "abcd", "/nonexistent/receipt.pub"] {
            assert_eq!(parse_public_key(bad).unwrap_err().kind(), ErrorKind::Key);
        }
        // The identity point has small order: every signature would "verify" loosely.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let err = parse_public_key(&hex::encode(identity)).unwrap_err();
        assert!(err.to_string().contains("small order"), "{err}");
    }

    /// The committed v1 fixture still verifies, and signing its receipt again with its key
    /// gives the same bytes (Ed25519 signatures are deterministic): the format has not drifted.
    #[test]
    fn the_v1_fixture_reads_back_and_is_reproduced_exactly() {
        let text = std::fs::read_to_string(fixture_path("receipt-v1.txt")).unwrap();
        let key = parse_public_key(fixture_path("receipt-v1.pub").to_str().unwrap()).unwrap();
        assert_eq!(verify_receipt(&text, &key).unwrap(), fixture_receipt());
        assert_eq!(
            fixture_signer().sign(&fixture_receipt()).unwrap(),
            text.trim()
        );
    }
}
