//! Template stores: where sealed template envelopes live.
//!
//! A store keeps opaque envelopes (see [`crate::template`]) with the few fields needed to find
//! them: subject, modality and key id. It never sees a plaintext vector or a key. Deleting is
//! real deletion: backends that can wipe freed pages do.

#[cfg(feature = "postgres")]
mod fleet;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub mod replication;
mod sqlite;

#[cfg(feature = "postgres")]
pub use fleet::Pushed;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "postgres")]
pub(crate) use postgres::connection_config;
pub use sqlite::SqliteStore;

use crate::error::Result;
use crate::template::Modality;

/// Templates kept per subject and modality by default.
pub const DEFAULT_MAX_TEMPLATES: usize = 5;

/// Where templates are stored (`[store]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite template database. By default, `.vouch/templates.db`; `$VOUCH_STORE`
    /// overrides it.
    pub sqlite: std::path::PathBuf,
    /// Templates kept per subject and modality (the newest). By default, 5.
    pub max_templates: usize,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            sqlite: std::path::PathBuf::from(".vouch/templates.db"),
            max_templates: DEFAULT_MAX_TEMPLATES,
        }
    }
}

impl StoreConfig {
    /// Checks the values ([`crate::ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.max_templates) {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::Config,
                "store.max_templates must be between 1 and 1000",
            ));
        }
        Ok(())
    }
}

/// One stored envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTemplate {
    /// Store-assigned id.
    pub id: i64,
    /// Subject the template belongs to.
    pub subject: String,
    /// Face or voice.
    pub modality: Modality,
    /// Key the envelope is sealed under.
    pub key_id: String,
    /// The sealed envelope.
    pub blob: Vec<u8>,
}

/// How many templates a subject has, per modality.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SubjectSummary {
    /// Subject id.
    pub subject: String,
    /// Face templates.
    pub face: usize,
    /// Voice templates.
    pub voice: usize,
    /// Passphrase (enrolled digits) templates.
    pub passphrase: usize,
}

/// An envelope to store, as [`TemplateStore::update`] takes it.
#[derive(Clone, Copy, Debug)]
pub struct NewTemplate<'a> {
    /// Face, voice or passphrase.
    pub modality: Modality,
    /// Key the envelope is sealed under.
    pub key_id: &'a str,
    /// The sealed envelope.
    pub blob: &'a [u8],
}

/// A place to keep sealed templates. Implementations are safe to share between threads, and
/// each write is atomic and durable once it returns: an acknowledged enrollment survives a
/// crash, and no crash leaves a partial record.
pub trait TemplateStore: Send + Sync {
    /// Stores `insert` and deletes the templates `delete` names (ids of `subject`'s templates;
    /// ids already gone are ignored) in one atomic write: an enrollment that adds a template
    /// and drops the oldest is never seen half-done. Returns the new templates' ids, in order.
    fn update(&self, subject: &str, insert: &[NewTemplate<'_>], delete: &[i64])
    -> Result<Vec<i64>>;
    /// Stores an envelope; returns its id.
    fn insert(&self, subject: &str, modality: Modality, key_id: &str, blob: &[u8]) -> Result<i64> {
        let new = NewTemplate {
            modality,
            key_id,
            blob,
        };
        Ok(self.update(subject, &[new], &[])?[0])
    }
    /// A subject's templates, oldest first (all modalities when `modality` is `None`).
    fn templates(&self, subject: &str, modality: Option<Modality>) -> Result<Vec<StoredTemplate>>;
    /// Every subject with its template counts, sorted by subject.
    fn subjects(&self) -> Result<Vec<SubjectSummary>>;
    /// Deletes a subject's templates; returns how many there were.
    fn delete_subject(&self, subject: &str) -> Result<usize>;
    /// Deletes one template; [`crate::ErrorKind::NotFound`] when it does not exist.
    fn delete_template(&self, id: i64) -> Result<()>;
    /// Up to `limit` templates not sealed under `key_id` (for key rotation).
    fn not_under_key(&self, key_id: &str, limit: usize) -> Result<Vec<StoredTemplate>>;
    /// Replaces an envelope after re-sealing, only if it is still under `old_key_id` (so a
    /// rotation that runs twice, or races another, never overwrites newer data). Returns
    /// whether it was replaced.
    fn reseal(&self, id: i64, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool>;
    /// A number that changes when another writer (another process, another connection)
    /// changes the store; `None` when the store cannot tell. An in-memory copy of the store's
    /// contents (the 1:N gallery) is refreshed when it moves. By default, `None`.
    fn revision(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Calls `visit` for every template of `modality` (1:N scans).
    fn scan(
        &self,
        modality: Modality,
        visit: &mut dyn FnMut(&StoredTemplate) -> Result<()>,
    ) -> Result<()>;
}

#[cfg(test)]
pub(crate) mod suite {
    //! The behaviour every backend must show, run against each one.

    use super::*;
    use crate::ErrorKind;

    pub(crate) fn run(store: &dyn TemplateStore) {
        let a = store
            .insert("alice", Modality::Face, "k1", b"alice-face-1")
            .unwrap();
        let b = store
            .insert("alice", Modality::Face, "k1", b"alice-face-2")
            .unwrap();
        let v = store
            .insert("alice", Modality::Voice, "k1", b"alice-voice")
            .unwrap();
        store
            .insert("alice", Modality::Passphrase, "k1", b"alice-digits")
            .unwrap();
        let c = store
            .insert("bob", Modality::Face, "k2", b"bob-face")
            .unwrap();
        assert!(a < b && b < v && v < c, "ids grow");

        let faces = store.templates("alice", Some(Modality::Face)).unwrap();
        assert_eq!(
            faces.iter().map(|t| t.blob.as_slice()).collect::<Vec<_>>(),
            [b"alice-face-1".as_slice(), b"alice-face-2"]
        );
        assert_eq!(store.templates("alice", None).unwrap().len(), 4);
        assert!(store.templates("nobody", None).unwrap().is_empty());

        let subjects = store.subjects().unwrap();
        assert_eq!(
            subjects,
            vec![
                SubjectSummary {
                    subject: "alice".into(),
                    face: 2,
                    voice: 1,
                    passphrase: 1
                },
                SubjectSummary {
                    subject: "bob".into(),
                    face: 1,
                    voice: 0,
                    passphrase: 0
                },
            ]
        );

        let mut seen = Vec::new();
        store
            .scan(Modality::Face, &mut |t| {
                seen.push(t.subject.clone());
                Ok(())
            })
            .unwrap();
        seen.sort();
        assert_eq!(seen, ["alice", "alice", "bob"]);

        // rotation support
        let stale = store.not_under_key("k2", 10).unwrap();
        assert_eq!(stale.len(), 4);
        assert!(
            store
                .reseal(a, "k1", "k2", b"alice-face-1-resealed")
                .unwrap()
        );
        assert!(
            !store.reseal(a, "k1", "k2", b"again").unwrap(),
            "a second reseal must not apply"
        );
        assert_eq!(store.not_under_key("k2", 10).unwrap().len(), 3);
        assert_eq!(
            store.templates("alice", Some(Modality::Face)).unwrap()[0].blob,
            b"alice-face-1-resealed"
        );

        // deletion
        store.delete_template(b).unwrap();
        assert_eq!(
            store.delete_template(b).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(store.delete_subject("alice").unwrap(), 3);
        assert_eq!(store.delete_subject("alice").unwrap(), 0);
        assert_eq!(store.subjects().unwrap().len(), 1);

        // one atomic update: two stored, one dropped, a missing id ignored
        let ids = store
            .update(
                "bob",
                &[
                    NewTemplate {
                        modality: Modality::Face,
                        key_id: "k2",
                        blob: b"bob-face-2",
                    },
                    NewTemplate {
                        modality: Modality::Voice,
                        key_id: "k2",
                        blob: b"bob-voice",
                    },
                ],
                &[c, 999_999],
            )
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids[0] > c && ids[1] > ids[0], "ids grow");
        let bob = store.templates("bob", None).unwrap();
        assert_eq!(
            bob.iter().map(|t| t.blob.as_slice()).collect::<Vec<_>>(),
            [b"bob-face-2".as_slice(), b"bob-voice"]
        );
    }
}
