//! Keys and the encrypted template envelope.
//!
//! **Cipher: XChaCha20-Poly1305.** Its 192-bit nonces can be drawn at random for every
//! template with no risk of reuse, so no nonce counter has to be kept consistent across a
//! fleet of terminals, a restored backup or a crash; and it is constant-time in software on
//! devices without AES instructions. Each template is further sealed under its own data key,
//! derived with HKDF-SHA256 from the key-encryption key (KEK) and a random 128-bit salt, so no
//! two templates share a key even if a random source repeated.
//!
//! **Binding.** The associated data covers the envelope prefix (magic, version, key id, salt,
//! nonce), the template header (modality, model, dimension…) and the subject id. A template
//! copied to another subject, a header edited to claim another model, or a key id swapped all
//! fail authentication.
//!
//! ```text
//! magic "VCHE" | version u16 | key id (u8 length + UTF-8) | salt [16] | nonce [24]
//! | header length u16 | header | ciphertext of the vector | tag [16]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::template::format::{Template, TemplateHeader, corrupt, decode_header};

/// Where template keys come from (`[keys]`). The keys themselves never appear in the
/// configuration.
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// The key file (mode 0600; made by `vouch keys generate`). By default,
    /// `.vouch/keys.toml`; `$VOUCH_KEYS` overrides it.
    pub file: std::path::PathBuf,
    /// An environment variable holding `ID:HEX` to use instead of the file. By default,
    /// `VOUCH_KEK` when it is set. Only the variable's name is configuration: its value, a
    /// secret, is read by [`Keyring::from_env`] and nowhere else.
    pub env: Option<String>,
}

impl Default for KeysConfig {
    fn default() -> KeysConfig {
        KeysConfig {
            file: std::path::PathBuf::from(".vouch/keys.toml"),
            env: None,
        }
    }
}

impl KeysConfig {
    /// The keyring this configuration names: from the environment variable `env` when set,
    /// else from the key file.
    pub fn keyring(&self) -> Result<Keyring> {
        match &self.env {
            Some(var) => Keyring::from_env(var),
            None => Keyring::load(&self.file).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("{} (create keys with `vouch keys generate`)", e.message()),
                )
            }),
        }
    }
}

const MAGIC: &[u8; 4] = b"VCHE";
/// The envelope version this library writes.
pub const ENVELOPE_VERSION: u16 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HKDF_INFO: &[u8] = b"vouch template data key v1";

/// A 256-bit key-encryption key. Wiped on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; 32]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(redacted)")
    }
}

impl PartialEq for Kek {
    fn eq(&self, other: &Kek) -> bool {
        // Constant time: a timing difference must not reveal how many bytes of a key match.
        // `subtle` keeps the optimiser from turning a hand-written fold into an early exit.
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl Kek {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Kek> {
        let mut bytes = [0u8; 32];
        crate::secure::random(&mut bytes)?;
        Ok(Kek(bytes))
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex_text: &str) -> Result<Kek> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_text.trim(), bytes.as_mut())
            .map_err(|_| Error::new(ErrorKind::Key, "a key is 64 hex digits (256 bits)"))?;
        Ok(Kek(*bytes))
    }

    /// The key as 64 hex digits (for writing a key file); wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }
}

/// Where key-encryption keys come from. A KMS or HSM implements this trait; vouch ships a
/// file-backed [`Keyring`] and one from an environment variable.
pub trait KeyProvider: Send + Sync {
    /// The id of the key new templates are sealed with.
    fn current_key_id(&self) -> String;
    /// The key with `id`, or an [`ErrorKind::Key`] error.
    fn key(&self, id: &str) -> Result<Kek>;
}

/// Named keys and which one is current.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, Kek>,
    transform: Option<Kek>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    current: String,
    keys: BTreeMap<String, String>,
    transform: Option<String>,
}

impl Keyring {
    /// A keyring with one fresh key, current.
    pub fn generate(id: &str) -> Result<Keyring> {
        check_key_id(id)?;
        let mut keys = BTreeMap::new();
        keys.insert(id.to_string(), Kek::generate()?);
        Ok(Keyring {
            current: id.to_string(),
            keys,
            transform: None,
        })
    }

    /// Adds a fresh renewable-template transform key (see [`crate::template::Transform`]).
    /// It is kept apart from the encryption keys: rotating those must not change the space
    /// templates are stored in.
    pub fn add_transform_key(&mut self) -> Result<()> {
        if self.transform.is_some() {
            return Err(Error::new(
                ErrorKind::Key,
                "the keyring already has a transform key",
            ));
        }
        self.transform = Some(Kek::generate()?);
        Ok(())
    }

    /// The renewable-template transform key, when the deployment uses one.
    pub fn transform_key(&self) -> Option<&Kek> {
        self.transform.as_ref()
    }

    /// A keyring holding one key, current.
    pub fn single(id: &str, key: Kek) -> Result<Keyring> {
        check_key_id(id)?;
        Ok(Keyring {
            current: id.to_string(),
            keys: BTreeMap::from([(id.to_string(), key)]),
            transform: None,
        })
    }

    /// Adds a key and makes it current (key rotation); older keys stay for decryption.
    pub fn rotate_to(&mut self, id: &str, key: Kek) -> Result<()> {
        check_key_id(id)?;
        if self.keys.contains_key(id) {
            return Err(Error::new(
                ErrorKind::Key,
                format!("the keyring already has a key {id:?}"),
            ));
        }
        self.keys.insert(id.to_string(), key);
        self.current = id.to_string();
        Ok(())
    }

    /// Removes a key that is no longer needed (after every template was re-sealed).
    pub fn retire(&mut self, id: &str) -> Result<()> {
        if id == self.current {
            return Err(Error::new(
                ErrorKind::Key,
                "the current key cannot be retired",
            ));
        }
        self.keys
            .remove(id)
            .map(drop)
            .ok_or_else(|| Error::new(ErrorKind::Key, format!("no key {id:?}")))
    }

    /// The ids of every key, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// Reads a key file (TOML: `current = "id"` and a `[keys]` table of hex keys). Refused when
    /// the file can be read by anyone but its owner.
    pub fn load(path: &Path) -> Result<Keyring> {
        crate::secure::check_owner_only_reads(path, "key file", ErrorKind::Key)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Key,
                format!("cannot read key file {}: {e}", path.display()),
            )
        })?);
        let mut file: KeyFile = toml::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Key,
                format!("key file {} is malformed: {}", path.display(), e.message()),
            )
        })?;
        let mut keys = BTreeMap::new();
        for (id, hex_text) in std::mem::take(&mut file.keys) {
            let mut hex_text = hex_text;
            let key = Kek::from_hex(&hex_text).map_err(|e| {
                Error::new(
                    ErrorKind::Key,
                    format!("key {id:?} in {}: {}", path.display(), e.message()),
                )
            });
            hex_text.zeroize();
            check_key_id(&id)?;
            keys.insert(id, key?);
        }
        if !keys.contains_key(&file.current) {
            return Err(Error::new(
                ErrorKind::Key,
                format!(
                    "key file {}: the current key {:?} is not in [keys]",
                    path.display(),
                    file.current
                ),
            ));
        }
        let transform = match file.transform.take() {
            Some(mut hex_text) => {
                let key = Kek::from_hex(&hex_text);
                hex_text.zeroize();
                Some(key.map_err(|e| {
                    Error::new(
                        ErrorKind::Key,
                        format!("transform key in {}: {}", path.display(), e.message()),
                    )
                })?)
            }
            None => None,
        };
        Ok(Keyring {
            current: file.current,
            keys,
            transform,
        })
    }

    /// A keyring from an environment variable holding `ID:HEX` (or just `HEX`, id `env`).
    pub fn from_env(var: &str) -> Result<Keyring> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::new(
                ErrorKind::Key,
                format!("the environment variable {var} is not set"),
            )
        })?);
        let (id, hex_text) = value.split_once(':').unwrap_or(("env", value.as_str()));
        Keyring::single(id, Kek::from_hex(hex_text)?)
    }

    /// Writes the keyring to `path` with mode 0600, atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = Zeroizing::new(format!(
            "# vouch key-encryption keys. Keep this file private (mode 0600).\ncurrent = \"{}\"\n",
            self.current
        ));
        if let Some(t) = &self.transform {
            text.push_str(&format!("transform = \"{}\"\n", t.to_hex().as_str()));
        }
        text.push_str("\n[keys]\n");
        for (id, key) in &self.keys {
            text.push_str(&format!("\"{id}\" = \"{}\"\n", key.to_hex().as_str()));
        }
        crate::secure::write_atomic(
            path,
            text.as_bytes(),
            crate::secure::Access::Private,
            crate::secure::Existing::Replace,
        )
        .map_err(|e| Error::io("writing", path, e))
    }
}

impl KeyProvider for Keyring {
    fn current_key_id(&self) -> String {
        self.current.clone()
    }

    fn key(&self, id: &str) -> Result<Kek> {
        self.keys.get(id).cloned().ok_or_else(|| {
            Error::new(ErrorKind::Key, format!("no key {id:?} in the keyring (was it retired before every template was re-sealed?)"))
        })
    }
}

fn check_key_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Key,
            format!("key id {id:?} must be 1 to 64 of A-Z a-z 0-9 - _ ."),
        ))
    }
}

fn cipher(kek: &Kek, salt: &[u8]) -> Result<XChaCha20Poly1305> {
    let mut data_key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), &kek.0)
        .expand(HKDF_INFO, data_key.as_mut())
        .map_err(|_| Error::new(ErrorKind::Key, "key derivation failed"))?;
    XChaCha20Poly1305::new_from_slice(data_key.as_ref())
        .map_err(|_| Error::new(ErrorKind::Key, "bad data key length"))
}

fn associated_data(prefix: &[u8], subject: &str) -> Vec<u8> {
    let mut aad = prefix.to_vec();
    aad.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    aad.extend_from_slice(subject.as_bytes());
    aad
}

/// Encrypts `template` for `subject` under the provider's current key.
pub fn seal(template: &Template, subject: &str, keys: &dyn KeyProvider) -> Result<Vec<u8>> {
    check_subject(subject)?;
    let key_id = keys.current_key_id();
    check_key_id(&key_id)?;
    let kek = keys.key(&key_id)?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    crate::secure::random(&mut salt)?;
    crate::secure::random(&mut nonce)?;
    let header = template.header_bytes();
    let mut out = Vec::with_capacity(64 + header.len() + template.values().len() * 4 + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&ENVELOPE_VERSION.to_le_bytes());
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    let aad = associated_data(&out, subject);
    let plaintext = Zeroizing::new(template.value_bytes());
    let ciphertext = cipher(&kek, &salt)?
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_ref(),
                aad: &aad,
            },
        )
        .map_err(|_| Error::new(ErrorKind::Key, "encryption failed"))?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// What can be read from an envelope without a key.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvelopeInfo {
    /// The key the template is sealed under.
    pub key_id: String,
    /// The template's header.
    pub header: TemplateHeader,
}

struct Parsed<'a> {
    info: EnvelopeInfo,
    salt: &'a [u8],
    nonce: &'a [u8],
    prefix: &'a [u8],
    ciphertext: &'a [u8],
}

fn parse(blob: &[u8]) -> Result<Parsed<'_>> {
    let take = |at: usize, n: usize| -> Result<&[u8]> {
        blob.get(at..at.saturating_add(n))
            .ok_or_else(|| corrupt(format!("the envelope is truncated at byte {at}")))
    };
    if take(0, 4)? != MAGIC {
        return Err(corrupt("not a vouch template envelope (bad magic)".into()));
    }
    let version = u16::from_le_bytes([take(4, 1)?[0], take(5, 1)?[0]]);
    if version != ENVELOPE_VERSION {
        return Err(Error::new(
            ErrorKind::TemplateFormat,
            format!(
                "template envelope version {version} is not supported (this vouch reads version {ENVELOPE_VERSION})"
            ),
        ));
    }
    let id_len = take(6, 1)?[0] as usize;
    let key_id = std::str::from_utf8(take(7, id_len)?)
        .map_err(|_| corrupt("the key id is not UTF-8".into()))?
        .to_string();
    let mut at = 7 + id_len;
    let salt = take(at, SALT_LEN)?;
    at += SALT_LEN;
    let nonce = take(at, NONCE_LEN)?;
    at += NONCE_LEN;
    let header_len = u16::from_le_bytes([take(at, 1)?[0], take(at + 1, 1)?[0]]) as usize;
    at += 2;
    let header = decode_header(take(at, header_len)?)?;
    at += header_len;
    let ciphertext = &blob[at..];
    if ciphertext.len() != header.dimension as usize * 4 + TAG_LEN {
        return Err(corrupt(format!(
            "the ciphertext is {} bytes, the header declares {} values",
            ciphertext.len(),
            header.dimension
        )));
    }
    Ok(Parsed {
        info: EnvelopeInfo { key_id, header },
        salt,
        nonce,
        prefix: &blob[..at],
        ciphertext,
    })
}

/// Reads the key id and header of an envelope without decrypting it.
pub fn peek(blob: &[u8]) -> Result<EnvelopeInfo> {
    parse(blob).map(|p| p.info)
}

/// Decrypts an envelope sealed for `subject`. Tampering anywhere, another subject, or the
/// wrong key is [`ErrorKind::TemplateAuth`]; malformed bytes are [`ErrorKind::TemplateFormat`].
pub fn open(blob: &[u8], subject: &str, keys: &dyn KeyProvider) -> Result<Template> {
    let parsed = parse(blob)?;
    let kek = keys.key(&parsed.info.key_id)?;
    let aad = associated_data(parsed.prefix, subject);
    let plaintext = Zeroizing::new(
        cipher(&kek, parsed.salt)?
            .decrypt(XNonce::from_slice(parsed.nonce), Payload { msg: parsed.ciphertext, aad: &aad })
            .map_err(|_| {
                Error::new(
                    ErrorKind::TemplateAuth,
                    "the template failed authentication: it was altered, belongs to another subject, or the key is wrong",
                )
            })?,
    );
    Template::from_parts(parsed.info.header, &plaintext)
}

fn check_subject(subject: &str) -> Result<()> {
    if subject.is_empty() || subject.len() > 256 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a subject id must be 1 to 256 bytes long",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::format::tests::header;
    use proptest::prelude::*;

    fn keyring() -> Keyring {
        Keyring::single("k1", Kek::from_hex(&"11".repeat(32)).unwrap()).unwrap()
    }

    fn template(values: Vec<f32>) -> Template {
        Template::new(header(values.len() as u32), values).unwrap()
    }

    #[test]
    fn seal_then_open() {
        let t = template(vec![0.5, -0.25, 0.125]);
        let blob = seal(&t, "alice", &keyring()).unwrap();
        assert_eq!(open(&blob, "alice", &keyring()).unwrap(), t);
        assert_eq!(peek(&blob).unwrap().key_id, "k1");
        // random salt and nonce: sealing twice gives different bytes
        assert_ne!(seal(&t, "alice", &keyring()).unwrap(), blob);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let t = template(vec![0.5, -0.25, 0.125, 1.0]);
        let blob = seal(&t, "alice", &keyring()).unwrap();
        for byte in 0..blob.len() {
            for bit in 0..8 {
                let mut bad = blob.clone();
                bad[byte] ^= 1 << bit;
                let err = open(&bad, "alice", &keyring()).unwrap_err();
                assert!(
                    matches!(
                        err.kind(),
                        ErrorKind::TemplateAuth | ErrorKind::TemplateFormat | ErrorKind::Key
                    ),
                    "byte {byte} bit {bit}: {err}"
                );
            }
        }
    }

    #[test]
    fn another_subject_or_key_fails_authentication() {
        let blob = seal(&template(vec![1.0, 2.0]), "alice", &keyring()).unwrap();
        assert_eq!(
            open(&blob, "mallory", &keyring()).unwrap_err().kind(),
            ErrorKind::TemplateAuth
        );
        let other = Keyring::single("k1", Kek::from_hex(&"22".repeat(32)).unwrap()).unwrap();
        assert_eq!(
            open(&blob, "alice", &other).unwrap_err().kind(),
            ErrorKind::TemplateAuth
        );
        let missing = Keyring::single("k2", Kek::from_hex(&"11".repeat(32)).unwrap()).unwrap();
        assert_eq!(
            open(&blob, "alice", &missing).unwrap_err().kind(),
            ErrorKind::Key
        );
    }

    #[test]
    fn truncations_and_unknown_versions_are_format_errors() {
        let blob = seal(&template(vec![1.0, 2.0]), "alice", &keyring()).unwrap();
        for cut in 0..blob.len() {
            let kind = open(&blob[..cut], "alice", &keyring()).unwrap_err().kind();
            assert_eq!(kind, ErrorKind::TemplateFormat, "cut {cut}");
        }
        let mut future = blob.clone();
        future[4] = 2;
        let err = open(&future, "alice", &keyring()).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn keys_are_redacted_and_compared_in_constant_time_shape() {
        let a = Kek::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{a:?}"), "Kek(redacted)");
        assert!(!format!("{:?}", keyring()).contains("1111"));
        assert_eq!(a, Kek::from_hex(&"AB".repeat(32)).unwrap());
        assert_ne!(a, Kek::from_hex(&"ac".repeat(32)).unwrap());
        assert_eq!(Kek::from_hex("abc").unwrap_err().kind(), ErrorKind::Key);
    }

    #[test]
    fn key_files_round_trip_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let mut ring = Keyring::generate("2026-11").unwrap();
        ring.rotate_to("2026-12", Kek::generate().unwrap()).unwrap();
        ring.add_transform_key().unwrap();
        ring.save(&path).unwrap();
        let loaded = Keyring::load(&path).unwrap();
        assert_eq!(loaded.transform_key(), ring.transform_key());
        assert!(loaded.transform_key().is_some());
        assert_eq!(loaded.current_key_id(), "2026-12");
        assert_eq!(loaded.key("2026-11").unwrap(), ring.key("2026-11").unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Keyring::load(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Key);
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn malformed_key_files_are_key_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            "current = \"a\"\n[keys]\nb = \"00\"\n",
            &format!("current = \"a\"\n[keys]\nb = \"{}\"\n", "00".repeat(32)),
            "not toml at all [",
            &format!(
                "current = \"a b\"\n[keys]\n\"a b\" = \"{}\"\n",
                "00".repeat(32)
            ),
        ];
        for (i, text) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.toml"));
            crate::secure::write_atomic(
                &path,
                text.as_bytes(),
                crate::secure::Access::Private,
                crate::secure::Existing::Replace,
            )
            .unwrap();
            assert_eq!(
                Keyring::load(&path).unwrap_err().kind(),
                ErrorKind::Key,
                "case {i}"
            );
        }
        assert_eq!(
            Keyring::load(&dir.path().join("absent.toml"))
                .unwrap_err()
                .kind(),
            ErrorKind::Key
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn open_inverts_seal_only_in_the_right_context(
            values in proptest::collection::vec(-10f32..10.0, 1..64),
            subject in "[a-z0-9-]{1,32}",
            other in "[a-z0-9-]{1,32}",
        ) {
            let t = template(values);
            let blob = seal(&t, &subject, &keyring()).unwrap();
            prop_assert_eq!(open(&blob, &subject, &keyring()).unwrap(), t);
            if other != subject {
                prop_assert_eq!(open(&blob, &other, &keyring()).unwrap_err().kind(), ErrorKind::TemplateAuth);
            }
        }
    }
}
