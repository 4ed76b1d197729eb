//! The few rules every service needs the same way, in one place each.
//!
//! Owns: the services' clock ([`clock`]), China Standard Time ([`time`]),
//! parsing an id a caller sent ([`ids`]), checking a coordinate ([`geo`])
//! telling what an uploaded file is from its first bytes ([`media`]), and
//! the bilingual [`Text`] every message a caller reads is written in
//! ([`text`]). Plain types and functions: no I/O, no gRPC, no database. A
//! failure is a [`FieldError`] naming the
//! field; each service maps it into its own error once.

pub mod clock;
pub mod geo;
pub mod ids;
pub mod media;
pub mod text;
pub mod time;

pub use text::{Lang, Text};

/// Bad input in one field: the dotted path and why (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: Text,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<Text>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // English, for logs; callers read `message` in their language.
        write!(f, "{}: {}", self.field, self.message.en)
    }
}

impl std::error::Error for FieldError {}
