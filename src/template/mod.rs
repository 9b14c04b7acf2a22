//! Templates: the versioned format, encryption bound to subject and model, keys, and renewable
//! transforms.
//!
//! This module owns every byte of a template at rest. Plaintext vectors and keys are wiped on
//! drop and redacted in `Debug`; nothing here logs. It never touches a database: stores keep
//! opaque envelopes ([`crate::store`]).

pub mod crypto;
pub mod format;
pub mod transform;

pub use crypto::{EnvelopeInfo, Kek, KeyProvider, Keyring, KeysConfig, open, peek, seal};
pub use format::{Modality, Template, TemplateHeader};
pub use transform::Transform;
