//! The template vault: encrypted templates in a store, with keys, renewable transforms,
//! enrollment updates and key rotation.
//!
//! **Enrollment updates.** Each enrollment session adds one template per model (the
//! normalised mean of its samples), and a subject keeps a bounded set of the newest
//! `max_templates` per modality and model (default 5); verification scores a probe against
//! every template of the model in the set and keeps the best. A bounded set follows a face that
//! changes (beard, glasses, ageing) without letting one bad session drag a running mean away,
//! and without unbounded growth.
//!
//! **Model binding.** Every template records the model that made it, and a probe is only ever
//! compared with templates of its own model: a subject may hold templates of several models of
//! one modality (the voice encoder's and the GMM-UBM's voiceprints), each loaded by its model.
//! Asking for a model the subject has no template of, while they have templates of another, is
//! [`ErrorKind::TemplateModelMismatch`]: re-enrollment is required.
//!
//! **Protection.** Every template is sealed (encrypted and bound to its subject). Embeddings
//! compared by cosine are also stored in the renewable transform's space when the vault has
//! one ([`Protection::Renewable`]); vectors compared in their own space — digit centroids, a
//! GMM's adapted means — are sealed as they are ([`Protection::SealedOnly`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{SubjectSummary, TemplateStore};
use crate::template::{self, EnvelopeInfo, Kek, KeyProvider, Modality, Template, Transform};

/// Encrypted template storage with keys.
pub struct TemplateVault {
    store: Arc<dyn TemplateStore>,
    keys: Arc<dyn KeyProvider>,
    transform_key: Option<Kek>,
    transforms: Mutex<HashMap<usize, Arc<Transform>>>,
    max_templates: usize,
}

impl std::fmt::Debug for TemplateVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateVault")
            .field("current_key", &self.keys.current_key_id())
            .field("renewable", &self.transform_key.is_some())
            .field("max_templates", &self.max_templates)
            .finish_non_exhaustive()
    }
}

/// How a template's vector is protected beyond its encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// An embedding compared by cosine: stored in the renewable transform's space when the
    /// vault has one, so that a new transform key renews every template; probes go through
    /// [`TemplateVault::protect`].
    Renewable,
    /// A vector compared in its own space (digit centroids, a GMM's adapted means): sealed as
    /// it is.
    SealedOnly,
}

/// What a key rotation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    /// Templates re-sealed under the current key by this run.
    pub resealed: usize,
    /// Templates another writer changed or deleted while this run worked (left as they were).
    pub skipped: usize,
}

impl TemplateVault {
    /// The vault the configuration describes: the SQLite store of `store`, the keyring of
    /// `keys` (its file, or the key in the environment variable it names), and the keyring's
    /// transform key if it has one.
    pub fn open(
        store: &crate::store::StoreConfig,
        keys: &crate::template::KeysConfig,
    ) -> Result<TemplateVault> {
        if let Some(dir) = store.sqlite.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("creating the store folder", dir, e))?;
        }
        let sqlite = Arc::new(crate::store::SqliteStore::open(&store.sqlite)?);
        TemplateVault::over(sqlite, store, keys)
    }

    /// The vault over `templates` (a fleet replica, say) with the rest of what [`open`]
    /// takes from the configuration: the bounded set's size, the keyring and its transform
    /// key.
    ///
    /// [`open`]: TemplateVault::open
    pub fn over(
        templates: Arc<dyn TemplateStore>,
        store: &crate::store::StoreConfig,
        keys: &crate::template::KeysConfig,
    ) -> Result<TemplateVault> {
        let keyring = keys.keyring()?;
        let transform = keyring.transform_key().cloned();
        let mut vault = TemplateVault::new(templates, Arc::new(keyring))
            .with_max_templates(store.max_templates);
        if let Some(key) = transform {
            vault = vault.with_transform(key);
        }
        Ok(vault)
    }

    /// A vault over `store`, sealing with `keys`' current key.
    pub fn new(store: Arc<dyn TemplateStore>, keys: Arc<dyn KeyProvider>) -> TemplateVault {
        TemplateVault {
            store,
            keys,
            transform_key: None,
            transforms: Mutex::new(HashMap::new()),
            max_templates: crate::store::DEFAULT_MAX_TEMPLATES,
        }
    }

    /// Applies a renewable orthogonal transform keyed by `key` to every vector before storage
    /// (and to every probe). By default, none.
    pub fn with_transform(mut self, key: Kek) -> TemplateVault {
        self.transform_key = Some(key);
        self
    }

    /// How many templates a subject keeps per modality. By default, 5.
    pub fn with_max_templates(mut self, max: usize) -> TemplateVault {
        self.max_templates = max.max(1);
        self
    }

    /// The id of the key new templates are sealed under.
    pub fn current_key_id(&self) -> String {
        self.keys.current_key_id()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TemplateStore> {
        &self.store
    }

    fn transform(&self, dim: usize) -> Result<Option<Arc<Transform>>> {
        let Some(key) = &self.transform_key else {
            return Ok(None);
        };
        let mut cache = self
            .transforms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = cache.get(&dim) {
            return Ok(Some(t.clone()));
        }
        let t = Arc::new(Transform::derive(key, dim)?);
        cache.insert(dim, t.clone());
        Ok(Some(t))
    }

    /// A probe vector in the space templates are stored in (transformed when the vault is
    /// renewable), ready to compare with [`TemplateVault::load`]'s templates.
    pub fn protect(&self, values: &[f32]) -> Result<Vec<f32>> {
        match self.transform(values.len())? {
            Some(t) => t.apply(values),
            None => Ok(values.to_vec()),
        }
    }

    /// Seals and stores a template for `subject`; the oldest templates of its modality and
    /// model beyond `max_templates` are deleted (templates of other models are kept).
    pub fn enroll(
        &self,
        subject: &str,
        template: &Template,
        protection: Protection,
    ) -> Result<i64> {
        Ok(self.enroll_all(subject, &[(template, protection)])?[0])
    }

    /// [`TemplateVault::enroll`] for several templates (of different models: a face enrolled
    /// by every configured embedder) in one atomic write: all of them are stored, or none.
    /// Returns their ids, in order.
    pub fn enroll_all(
        &self,
        subject: &str,
        templates: &[(&Template, Protection)],
    ) -> Result<Vec<i64>> {
        self.enroll_and_replace(subject, templates, &[])
    }

    /// Stores `enrolled` as [`TemplateVault::enroll_all`] does and each of `replacing` as its
    /// modality's only template, as [`TemplateVault::replace`] does, in one atomic write (a
    /// voice enrollment: the voiceprints added, the digits template replaced). Returns the
    /// ids of `enrolled` then `replacing`, in order.
    pub fn enroll_and_replace(
        &self,
        subject: &str,
        enrolled: &[(&Template, Protection)],
        replacing: &[(&Template, Protection)],
    ) -> Result<Vec<i64>> {
        let mut dropped = Vec::new();
        for (template, _) in enrolled {
            let header = template.header();
            let mut same_model = Vec::new();
            for stored in self.store.templates(subject, Some(header.modality))? {
                if template::peek(&stored.blob)?.header.model_id == header.model_id {
                    same_model.push(stored.id);
                }
            }
            let surplus = (same_model.len() + 1).saturating_sub(self.max_templates);
            dropped.extend(same_model.into_iter().take(surplus));
        }
        for (template, _) in replacing {
            let modality = template.header().modality;
            if enrolled
                .iter()
                .any(|(t, _)| t.header().modality == modality)
            {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "a template cannot both join and replace the templates of one modality",
                ));
            }
            dropped.extend(
                self.store
                    .templates(subject, Some(modality))?
                    .iter()
                    .map(|t| t.id),
            );
        }
        let all: Vec<(&Template, Protection)> = enrolled.iter().chain(replacing).copied().collect();
        self.seal_and_store(subject, &all, &dropped)
    }

    /// Seals `templates` (each's values in the protected space for
    /// [`Protection::Renewable`]) and stores them, deleting the templates `dropped` names in the
    /// same atomic write; returns their ids.
    fn seal_and_store(
        &self,
        subject: &str,
        templates: &[(&Template, Protection)],
        dropped: &[i64],
    ) -> Result<Vec<i64>> {
        let key_id = self.keys.current_key_id();
        let blobs = templates
            .iter()
            .map(|(template, protection)| {
                let values = match protection {
                    Protection::Renewable => self.protect(template.values())?,
                    Protection::SealedOnly => template.values().to_vec(),
                };
                let protected = Template::new(template.header().clone(), values)?;
                template::seal(&protected, subject, self.keys.as_ref())
            })
            .collect::<Result<Vec<_>>>()?;
        let new: Vec<crate::store::NewTemplate<'_>> = templates
            .iter()
            .zip(&blobs)
            .map(|((template, _), blob)| crate::store::NewTemplate {
                modality: template.header().modality,
                key_id: &key_id,
                blob,
            })
            .collect();
        self.store.update(subject, &new, dropped)
    }

    /// Seals and stores `template` as the subject's only template of its modality, whatever
    /// model made the others (a re-enrollment that moves a subject to a new model), in one
    /// atomic write.
    pub fn replace(
        &self,
        subject: &str,
        template: &Template,
        protection: Protection,
    ) -> Result<i64> {
        Ok(self.enroll_and_replace(subject, &[], &[(template, protection)])?[0])
    }

    /// The subject's newest template of `modality`, decrypted, whatever model made it (the
    /// caller checks its header's `model_id`); [`ErrorKind::NotFound`] when there is none.
    pub fn newest(&self, subject: &str, modality: Modality) -> Result<Template> {
        let stored = self.store.templates(subject, Some(modality))?;
        let newest = stored.last().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no {} enrollment for this subject", modality.as_str()),
            )
        })?;
        template::open(&newest.blob, subject, self.keys.as_ref())
    }

    /// The subject's templates of `modality` made by `model_id`, decrypted (as stored: in the
    /// protected space for [`Protection::Renewable`]), oldest first.
    /// [`ErrorKind::NotFound`] when the subject has no template of the modality;
    /// [`ErrorKind::TemplateModelMismatch`] when they have some, but none of `model_id`.
    pub fn load(&self, subject: &str, modality: Modality, model_id: &str) -> Result<Vec<Template>> {
        let stored = self.store.templates(subject, Some(modality))?;
        if stored.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no {} enrollment for this subject", modality.as_str()),
            ));
        }
        let mut found = Vec::new();
        let mut others = Vec::new();
        for s in &stored {
            let model = template::peek(&s.blob)?.header.model_id;
            if model == model_id {
                found.push(template::open(&s.blob, subject, self.keys.as_ref())?);
            } else if !others.contains(&model) {
                others.push(model);
            }
        }
        if found.is_empty() {
            return Err(Error::new(
                ErrorKind::TemplateModelMismatch,
                format!(
                    "the enrolled {} templates were made by {}, the engine uses {model_id}; re-enrollment required",
                    modality.as_str(),
                    others.join(", ")
                ),
            ));
        }
        Ok(found)
    }

    /// Whether the subject has a template of `modality` made by `model_id` (headers only,
    /// nothing decrypted).
    pub fn has_model(&self, subject: &str, modality: Modality, model_id: &str) -> Result<bool> {
        for stored in self.store.templates(subject, Some(modality))? {
            if template::peek(&stored.blob)?.header.model_id == model_id {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Metadata of a subject's templates (never their vectors).
    pub fn describe(&self, subject: &str) -> Result<Vec<(i64, EnvelopeInfo)>> {
        self.store
            .templates(subject, None)?
            .iter()
            .map(|s| Ok((s.id, template::peek(&s.blob)?)))
            .collect()
    }

    /// Every subject with counts.
    pub fn subjects(&self) -> Result<Vec<SubjectSummary>> {
        self.store.subjects()
    }

    /// Deletes every template of a subject; returns how many.
    pub fn delete_subject(&self, subject: &str) -> Result<usize> {
        self.store.delete_subject(subject)
    }

    /// Re-seals every template not under the current key, in batches, each template in its
    /// own write: the store stays in use, and an interrupted rotation resumes where it
    /// stopped when run again. `on_template` is called after each.
    pub fn rotate(&self, on_template: &mut dyn FnMut()) -> Result<RotationReport> {
        let current = self.keys.current_key_id();
        let mut report = RotationReport::default();
        let mut skipped_ids = std::collections::HashSet::new();
        loop {
            let batch = self
                .store
                .not_under_key(&current, 256 + skipped_ids.len())?;
            let batch: Vec<_> = batch
                .into_iter()
                .filter(|t| !skipped_ids.contains(&t.id))
                .collect();
            if batch.is_empty() {
                return Ok(report);
            }
            for stored in batch {
                let template = template::open(&stored.blob, &stored.subject, self.keys.as_ref())?;
                let blob = template::seal(&template, &stored.subject, self.keys.as_ref())?;
                if self
                    .store
                    .reseal(stored.id, &stored.key_id, &current, &blob)?
                {
                    report.resealed += 1;
                } else {
                    report.skipped += 1;
                    skipped_ids.insert(stored.id);
                }
                on_template();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Protection::{Renewable, SealedOnly};
    use super::*;
    use crate::store::MemoryStore;
    use crate::template::Keyring;
    use crate::template::format::{TemplateHeader, tests::header};

    fn vault() -> (TemplateVault, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let keys =
            Arc::new(Keyring::single("k1", Kek::from_hex(&"11".repeat(32)).unwrap()).unwrap());
        (TemplateVault::new(store.clone(), keys), store)
    }

    fn template(model: &str, values: Vec<f32>) -> Template {
        Template::new(
            TemplateHeader {
                model_id: model.into(),
                ..header(values.len() as u32)
            },
            values,
        )
        .unwrap()
    }

    #[test]
    fn enroll_load_and_the_bounded_set() {
        let (vault, _) = vault();
        let vault = vault.with_max_templates(2);
        for i in 0..3 {
            vault
                .enroll("alice", &template("m@1", vec![i as f32, 1.0]), Renewable)
                .unwrap();
        }
        let loaded = vault.load("alice", Modality::Face, "m@1").unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].values(), [1.0, 1.0], "the oldest was dropped");
        assert_eq!(
            vault.load("bob", Modality::Face, "m@1").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn templates_are_kept_and_loaded_per_model() {
        let (vault, _) = vault();
        let vault = vault.with_max_templates(2);
        for i in 0..3 {
            vault
                .enroll("alice", &template("m@1", vec![i as f32, 1.0]), Renewable)
                .unwrap();
        }
        vault
            .enroll("alice", &template("m@2", vec![9.0, 9.0, 9.0]), SealedOnly)
            .unwrap();
        let m1 = vault.load("alice", Modality::Face, "m@1").unwrap();
        assert_eq!(m1.len(), 2, "m@2's template takes no place in m@1's set");
        let m2 = vault.load("alice", Modality::Face, "m@2").unwrap();
        assert_eq!(m2.len(), 1);
        assert_eq!(m2[0].values(), [9.0, 9.0, 9.0]);
        assert!(vault.has_model("alice", Modality::Face, "m@2").unwrap());
        assert!(!vault.has_model("alice", Modality::Face, "m@3").unwrap());
        let err = vault.load("alice", Modality::Face, "m@3").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TemplateModelMismatch);
        assert!(err.to_string().contains("re-enrollment required"), "{err}");
        assert!(err.to_string().contains("m@1, m@2"), "{err}");
    }

    #[test]
    fn several_templates_join_and_replace_in_one_write() {
        let (vault, store) = vault();
        let vault = vault.with_max_templates(1);
        let face = |model: &str, v: f32| template(model, vec![v, 1.0]);
        let digits = |v: f32| {
            Template::new(
                TemplateHeader {
                    modality: Modality::Passphrase,
                    model_id: "digits@1".into(),
                    ..header(2)
                },
                vec![v, 1.0],
            )
            .unwrap()
        };
        let ids = vault
            .enroll_all(
                "alice",
                &[
                    (&face("m@1", 1.0), Renewable),
                    (&face("m@2", 2.0), Renewable),
                ],
            )
            .unwrap();
        assert_eq!(ids.len(), 2);
        // Again: each model's bound applies to its own set; the replaced modality keeps one.
        vault
            .enroll_and_replace(
                "alice",
                &[
                    (&face("m@1", 3.0), Renewable),
                    (&face("m@2", 4.0), Renewable),
                ],
                &[(&digits(5.0), SealedOnly)],
            )
            .unwrap();
        vault
            .enroll_and_replace("alice", &[], &[(&digits(6.0), SealedOnly)])
            .unwrap();
        assert_eq!(
            store
                .templates("alice", Some(Modality::Face))
                .unwrap()
                .len(),
            2
        );
        let newest = vault.newest("alice", Modality::Passphrase).unwrap();
        assert_eq!(newest.values(), [6.0, 1.0]);
        assert_eq!(
            store
                .templates("alice", Some(Modality::Passphrase))
                .unwrap()
                .len(),
            1
        );
        // One template may not both join and replace its modality's set: nothing is written.
        let before = store.templates("alice", None).unwrap().len();
        let err = vault
            .enroll_and_replace(
                "alice",
                &[(&face("m@1", 7.0), Renewable)],
                &[(&face("m@2", 8.0), Renewable)],
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(store.templates("alice", None).unwrap().len(), before);
    }

    #[test]
    fn renewable_vaults_store_transformed_vectors_with_unchanged_scores() {
        let (plain, _) = vault();
        let (renewable, _) = vault();
        let renewable = renewable.with_transform(Kek::from_hex(&"77".repeat(32)).unwrap());
        let x: Vec<f32> = (0..128).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let probe: Vec<f32> = (0..128).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
        plain
            .enroll("a", &template("m@1", x.clone()), Renewable)
            .unwrap();
        renewable
            .enroll("a", &template("m@1", x.clone()), Renewable)
            .unwrap();
        renewable
            .enroll("b", &template("m@1", x.clone()), SealedOnly)
            .unwrap();
        let sealed_only = renewable.load("b", Modality::Face, "m@1").unwrap();
        assert_eq!(sealed_only[0].values(), x.as_slice());
        let stored_plain = plain.load("a", Modality::Face, "m@1").unwrap().remove(0);
        let stored_renewable = renewable
            .load("a", Modality::Face, "m@1")
            .unwrap()
            .remove(0);
        assert_eq!(stored_plain.values(), x.as_slice());
        assert_ne!(stored_renewable.values(), x.as_slice());
        let cos = |a: &[f32], b: &[f32]| {
            let d: f64 = a
                .iter()
                .zip(b)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum();
            let n = |v: &[f32]| v.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
            d / (n(a) * n(b))
        };
        let before = cos(&x, &probe);
        let after = cos(
            stored_renewable.values(),
            &renewable.protect(&probe).unwrap(),
        );
        assert!((before - after).abs() < 1e-5, "{before} vs {after}");
    }

    #[test]
    fn rotation_reseals_everything_and_is_idempotent() {
        let store = Arc::new(MemoryStore::new());
        let mut ring = Keyring::single("k1", Kek::from_hex(&"11".repeat(32)).unwrap()).unwrap();
        let old = TemplateVault::new(store.clone(), Arc::new(ring.clone()));
        for s in ["a", "b", "c"] {
            old.enroll(s, &template("m@1", vec![1.0, 2.0]), Renewable)
                .unwrap();
        }
        ring.rotate_to("k2", Kek::from_hex(&"22".repeat(32)).unwrap())
            .unwrap();
        let vault = TemplateVault::new(store.clone(), Arc::new(ring.clone()));
        let mut ticks = 0;
        assert_eq!(
            vault.rotate(&mut || ticks += 1).unwrap(),
            RotationReport {
                resealed: 3,
                skipped: 0
            }
        );
        assert_eq!(ticks, 3);
        assert_eq!(vault.rotate(&mut || {}).unwrap(), RotationReport::default());
        ring.retire("k1").unwrap();
        let only_new = TemplateVault::new(store, Arc::new(ring));
        assert_eq!(
            only_new.load("b", Modality::Face, "m@1").unwrap()[0].values(),
            [1.0, 2.0]
        );
    }
}
