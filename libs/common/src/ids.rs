//! Ids that callers send: UUIDs, surrounding blanks forgiven.

use uuid::Uuid;

use crate::{FieldError, Text, tr};

/// Parses the id in `field`.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| FieldError::new(field, tr!("必须是 ID（UUID）", "must be an id (UUID)")))
}

/// Parses the id of a `noun` (`tr!("诉求", "a ticket")`) in `field`; the
/// refusal says what it should have named.
pub fn parse_id_of(field: &str, raw: &str, noun: &Text) -> Result<Uuid, FieldError> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        FieldError::new(
            field,
            Text::new(
                format!("必须是{}的 ID（UUID）", noun.zh),
                format!("must be {} id (UUID)", noun.en),
            ),
        )
    })
}

/// An optional id: blank means none.
pub fn parse_optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, FieldError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_id(field, raw).map(Some)
}

/// Whether `raw` is exactly an id (a path segment that is not is answered
/// 404 without asking any service).
pub fn is_id(raw: &str) -> bool {
    Uuid::parse_str(raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_their_refusals() {
        let id = Uuid::now_v7();
        assert_eq!(parse_id("ticket_id", &format!(" {id} ")), Ok(id));
        let e = parse_id("ticket_id", "42").unwrap_err();
        assert_eq!(e.field, "ticket_id");
        assert!(e.message.zh.contains("UUID") && e.message.en.contains("UUID"));
        let e = parse_id_of("master_id", "x", &tr!("诉求", "a ticket")).unwrap_err();
        assert_eq!(e.message.zh, "必须是诉求的 ID（UUID）");
        assert_eq!(e.message.en, "must be a ticket id (UUID)");
        assert_eq!(parse_optional_id("unit", "  "), Ok(None));
        assert!(parse_optional_id("unit", "x").is_err());
        assert!(is_id(&id.to_string()) && !is_id("370202"));
    }
}
