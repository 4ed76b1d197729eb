//! The grid's people, pure: kinds of grid worker, key-person categories
//! (重点人群) and their labels, the checks on what staff type in (phones,
//! resident ID numbers, required text), and the masking rules: what a list
//! shows of a household or key person (a whole record needs a purpose and
//! is shown by the caller only to roles that may read it).

use jiesu_pii::{mask_address, mask_id_number, mask_name, mask_phone};
use jiesu_proto::grid::{Household, KeyPerson, Resident};

use jiesu_common::tr;

use crate::error::GridError;

pub const WORKER_KINDS: [&str; 5] = [
    "full_time",
    "part_time",
    "chief",
    "coordinator",
    "instructor",
];

/// Key-person categories (重点人群): the first four are 四必访.
pub const KEY_CATEGORIES: [(&str, &str); 7] = [
    ("elderly_alone", "独居老人"),
    ("disabled", "残疾人"),
    ("hardship", "困难家庭"),
    ("newborn", "新生儿家庭"),
    ("newly_wed", "新婚家庭"),
    ("community_correction", "社区矫正人员"),
    ("mental_illness", "严重精神障碍患者"),
];

pub fn category_label(code: &str) -> Option<&'static str> {
    KEY_CATEGORIES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
}

/// A key person's category, one of [`KEY_CATEGORIES`].
pub fn check_category(code: &str) -> Result<(), GridError> {
    if category_label(code).is_some() {
        return Ok(());
    }
    let all: Vec<&str> = KEY_CATEGORIES.iter().map(|(c, _)| *c).collect();
    Err(GridError::field(
        "category",
        tr!("必须是以下之一：{}", "must be one of {}", all.join(", ")),
    ))
}

pub fn check_worker_kind(kind: &str) -> Result<(), GridError> {
    if WORKER_KINDS.contains(&kind) {
        return Ok(());
    }
    Err(GridError::field(
        "kind",
        tr!(
            "必须是以下之一：{}",
            "must be one of {}",
            WORKER_KINDS.join(", ")
        ),
    ))
}

/// A phone number as digits only (blanks and dashes dropped).
pub fn check_phone(field: &str, phone: &str) -> Result<String, GridError> {
    let p: String = phone
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if p.len() < 7 || p.len() > 15 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GridError::field(
            field,
            tr!(
                "必须是 7 到 15 位数字的电话号码",
                "must be a phone number of 7 to 15 digits"
            ),
        ));
    }
    Ok(p)
}

/// An 18-character resident ID number (or nothing), upper-cased.
pub fn check_id_number(field: &str, v: &str) -> Result<String, GridError> {
    let id = v.trim().to_uppercase();
    if !id.is_empty()
        && (id.len() != 18
            || !id[..17].bytes().all(|b| b.is_ascii_digit())
            || !id[17..].bytes().all(|b| b.is_ascii_digit() || b == b'X'))
    {
        return Err(GridError::field(
            field,
            tr!(
                "必须是 18 位居民身份证号码",
                "must be an 18-character resident ID number"
            ),
        ));
    }
    Ok(id)
}

/// Text that must be there, trimmed, at most `max` characters.
pub fn required(field: &str, value: &str, max: usize) -> Result<String, GridError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(GridError::field(
            field,
            tr!(
                "必填，最多 {max} 个字符",
                "required, at most {max} characters"
            ),
        ));
    }
    Ok(v.to_owned())
}

/// A number within `range`, else refused with `message`.
pub fn within(
    field: &str,
    value: i32,
    range: std::ops::RangeInclusive<i32>,
) -> Result<i32, GridError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(GridError::field(
            field,
            tr!(
                "必须在 {} 到 {} 之间",
                "must be {} to {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Hides a key person's personal fields (lists).
pub fn mask_key_person(p: &mut KeyPerson) {
    p.name = mask_name(&p.name);
    p.id_number = mask_id_number(&p.id_number);
    p.phone = mask_phone(&p.phone);
    p.address = mask_address(&p.address);
    if !p.note.is_empty() {
        p.note = "****".into();
    }
}

/// Hides a household's personal fields: no room at all, the head's name
/// and phone masked, each resident's name and ID number masked.
pub fn mask_household(h: &mut Household) {
    h.room = "****".into();
    h.head_name = mask_name(&h.head_name);
    h.phone = mask_phone(&h.phone);
    h.residents.iter_mut().for_each(mask_resident);
}

fn mask_resident(r: &mut Resident) {
    r.name = mask_name(&r.name);
    r.id_number = mask_id_number(&r.id_number);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: std::fmt::Debug>(r: Result<T, GridError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn phones_and_id_numbers_are_checked_and_normalised() {
        let cases = [
            ("138-0013-8000", Ok("13800138000")),
            ("0532 8888 1234", Ok("053288881234")),
            (
                "12345",
                Err("phone: must be a phone number of 7 to 15 digits"),
            ),
            (
                "1380013800a",
                Err("phone: must be a phone number of 7 to 15 digits"),
            ),
        ];
        for (raw, want) in cases {
            match want {
                Ok(p) => assert_eq!(check_phone("phone", raw).ok().as_deref(), Some(p)),
                Err(m) => assert_eq!(refusal(check_phone("phone", raw)), m, "{raw}"),
            }
        }
        assert_eq!(
            check_id_number("id_number", " 37020219450101123x ")
                .ok()
                .as_deref(),
            Some("37020219450101123X")
        );
        assert_eq!(check_id_number("id_number", "").ok().as_deref(), Some(""));
        for bad in ["12345", "37020219450101123Y", "3702021945010112345"] {
            assert_eq!(
                refusal(check_id_number("residents[0].id_number", bad)),
                "residents[0].id_number: must be an 18-character resident ID number"
            );
        }
    }

    #[test]
    fn required_text_and_ranges() {
        assert_eq!(
            required("name", " 王海燕 ", 64).ok().as_deref(),
            Some("王海燕")
        );
        assert_eq!(
            refusal(required("name", "   ", 64)),
            "name: required, at most 64 characters"
        );
        assert!(required("room", &"室".repeat(65), 64).is_err());
        assert_eq!(refusal(within("stars", 6, 1..=5)), "stars: must be 1 to 5");
        assert_eq!(
            refusal(within("members", 0, 1..=50)),
            "members: must be 1 to 50"
        );
        assert_eq!(within("stars", 4, 1..=5).ok(), Some(4));
    }

    #[test]
    fn categories_kinds_and_labels() {
        assert_eq!(category_label("disabled"), Some("残疾人"));
        assert!(check_category("elderly_alone").is_ok());
        assert!(
            refusal(check_category("vip")).starts_with("category: must be one of elderly_alone, ")
        );
        assert!(check_worker_kind("chief").is_ok());
        assert_eq!(
            refusal(check_worker_kind("boss")),
            "kind: must be one of full_time, part_time, chief, coordinator, instructor"
        );
    }

    #[test]
    fn a_listed_key_person_shows_no_personal_field_whole() {
        let mut p = KeyPerson {
            name: "张秀兰".into(),
            id_number: "370202194501011234".into(),
            phone: "13912345678".into(),
            address: "燕儿岛路8号3单元502".into(),
            note: "独居，患高血压".into(),
            ..KeyPerson::default()
        };
        mask_key_person(&mut p);
        assert_eq!(
            (
                p.name.as_str(),
                p.id_number.as_str(),
                p.phone.as_str(),
                p.note.as_str()
            ),
            ("张**", "370202********1234", "139****5678", "****")
        );
        assert!(!p.address.contains("502"), "{}", p.address);
        let mut empty = KeyPerson::default();
        mask_key_person(&mut empty);
        assert_eq!(empty.note, "", "no note is no secret");
        let mut h = Household {
            room: "3单元502".into(),
            head_name: "张秀兰".into(),
            phone: "13912345678".into(),
            residents: vec![Resident {
                name: "张秀兰".into(),
                relation: "户主".into(),
                id_number: "370202194501011234".into(),
                birth_year: 1945,
            }],
            ..Household::default()
        };
        mask_household(&mut h);
        let r = &h.residents[0];
        assert_eq!(
            (h.room.as_str(), h.head_name.as_str(), h.phone.as_str()),
            ("****", "张**", "139****5678")
        );
        assert_eq!(
            (
                r.name.as_str(),
                r.relation.as_str(),
                r.id_number.as_str(),
                r.birth_year
            ),
            ("张**", "户主", "370202********1234", 1945)
        );
    }
}
