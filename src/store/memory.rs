//! An in-memory store, for tests and for embedding where persistence is handled elsewhere.

use std::sync::{Mutex, PoisonError};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{NewTemplate, StoredTemplate, SubjectSummary, TemplateStore};
use crate::template::Modality;

/// Templates in a `Vec` behind a mutex. Not persistent.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: i64,
    rows: Vec<StoredTemplate>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TemplateStore for MemoryStore {
    fn update(
        &self,
        subject: &str,
        insert: &[NewTemplate<'_>],
        delete: &[i64],
    ) -> Result<Vec<i64>> {
        let mut inner = self.lock();
        inner
            .rows
            .retain(|t| !(t.subject == subject && delete.contains(&t.id)));
        let mut ids = Vec::with_capacity(insert.len());
        for new in insert {
            inner.next_id += 1;
            let id = inner.next_id;
            inner.rows.push(StoredTemplate {
                id,
                subject: subject.to_string(),
                modality: new.modality,
                key_id: new.key_id.to_string(),
                blob: new.blob.to_vec(),
            });
            ids.push(id);
        }
        Ok(ids)
    }

    fn templates(&self, subject: &str, modality: Option<Modality>) -> Result<Vec<StoredTemplate>> {
        Ok(self
            .lock()
            .rows
            .iter()
            .filter(|t| t.subject == subject && modality.is_none_or(|m| m == t.modality))
            .cloned()
            .collect())
    }

    fn subjects(&self) -> Result<Vec<SubjectSummary>> {
        let mut map = std::collections::BTreeMap::<String, SubjectSummary>::new();
        for t in &self.lock().rows {
            let s = map
                .entry(t.subject.clone())
                .or_insert_with(|| SubjectSummary {
                    subject: t.subject.clone(),
                    face: 0,
                    voice: 0,
                    passphrase: 0,
                });
            match t.modality {
                Modality::Face => s.face += 1,
                Modality::Voice => s.voice += 1,
                Modality::Passphrase => s.passphrase += 1,
            }
        }
        Ok(map.into_values().collect())
    }

    fn delete_subject(&self, subject: &str) -> Result<usize> {
        let mut inner = self.lock();
        let before = inner.rows.len();
        inner.rows.retain(|t| t.subject != subject);
        Ok(before - inner.rows.len())
    }

    fn delete_template(&self, id: i64) -> Result<()> {
        let mut inner = self.lock();
        let before = inner.rows.len();
        inner.rows.retain(|t| t.id != id);
        if inner.rows.len() == before {
            return Err(Error::new(ErrorKind::NotFound, format!("no template {id}")));
        }
        Ok(())
    }

    fn not_under_key(&self, key_id: &str, limit: usize) -> Result<Vec<StoredTemplate>> {
        Ok(self
            .lock()
            .rows
            .iter()
            .filter(|t| t.key_id != key_id)
            .take(limit)
            .cloned()
            .collect())
    }

    fn reseal(&self, id: i64, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool> {
        let mut inner = self.lock();
        match inner
            .rows
            .iter_mut()
            .find(|t| t.id == id && t.key_id == old_key_id)
        {
            Some(t) => {
                t.key_id = new_key_id.to_string();
                t.blob = blob.to_vec();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        modality: Modality,
        visit: &mut dyn FnMut(&StoredTemplate) -> Result<()>,
    ) -> Result<()> {
        let rows: Vec<StoredTemplate> = self
            .lock()
            .rows
            .iter()
            .filter(|t| t.modality == modality)
            .cloned()
            .collect();
        rows.iter().try_for_each(visit)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_the_store_suite() {
        crate::store::suite::run(&super::MemoryStore::new());
    }
}
