//! Personal data: phones, ID numbers, exact addresses.
//!
//! Owns: AES-256-GCM encryption at rest with a key id in every ciphertext (so
//! keys rotate without downtime: new writes use the active key, old keys keep
//! decrypting), associated data binding a ciphertext to its row and field,
//! keyed blind indexes for equality lookups, masking for output, and
//! redaction of numbers found in free text.
//!
//! Never: logs a plaintext, returns a plaintext in an error message.

mod keyring;
mod mask;

pub use keyring::{Keyring, PiiConfig, PiiError};
pub use mask::{mask_address, mask_id_number, mask_name, mask_phone, redact_text};
