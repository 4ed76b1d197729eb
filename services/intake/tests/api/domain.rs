//! Intake's pure rules: validation, phones, tracking numbers.

use chrono::{DateTime, Utc};
use jiesu_intake::domain::*;
use jiesu_proto::intake::{Citizen, CreateTicketRequest, Location};

fn ok_request() -> CreateTicketRequest {
    CreateTicketRequest {
        idempotency_key: String::new(),
        channel: "hotline".into(),
        nature: "complaint".into(),
        category: "CX0101".into(),
        content: "楼上装修噪音到晚上11点".into(),
        location: Some(Location {
            lat: Some(36.06),
            lon: Some(120.38),
            address: "香港中路街道燕儿岛路10号".into(),
            ..Default::default()
        }),
        citizen: Some(Citizen {
            name: "张三".into(),
            phone: "138 0013 8000".into(),
            ..Default::default()
        }),
        urgency: String::new(),
        ..Default::default()
    }
}

#[test]
fn a_good_request_is_normalised() {
    let t = validate(&ok_request()).unwrap();
    assert_eq!(t.channel, Channel::Hotline);
    assert_eq!(t.urgency, Urgency::Normal);
    assert_eq!(t.citizen_phone, "13800138000");
    assert_eq!(t.point, Some((36.06, 120.38)));
}

#[test]
fn each_bad_field_is_named() {
    type Edit = fn(&mut CreateTicketRequest);
    let cases: Vec<(Edit, &str)> = vec![
        (|r| r.channel = "fax".into(), "channel"),
        (|r| r.channel = String::new(), "channel"),
        (|r| r.nature = "rant".into(), "nature"),
        (|r| r.urgency = "asap".into(), "urgency"),
        (|r| r.category = String::new(), "category"),
        (
            |r| r.category = "'; DROP TABLE tickets; --".into(),
            "category",
        ),
        (|r| r.content = "   ".into(), "content"),
        (|r| r.content = "字".repeat(4001), "content"),
        (|r| r.content = "a\u{0}b".into(), "content"),
        (
            |r| r.location.as_mut().unwrap().lat = Some(91.0),
            "location.lat",
        ),
        (
            |r| r.location.as_mut().unwrap().lat = Some(f64::NAN),
            "location.lat",
        ),
        (|r| r.location.as_mut().unwrap().lon = None, "location.lon"),
        (
            |r| r.location.as_mut().unwrap().lon = Some(-181.0),
            "location.lon",
        ),
        (
            |r| {
                let l = r.location.as_mut().unwrap();
                l.lat = Some(120.38f64.min(89.0));
                l.lon = Some(36.06);
            },
            "location",
        ),
        (
            |r| r.location.as_mut().unwrap().address = "路".repeat(201),
            "location.address",
        ),
        (|r| r.citizen = None, "citizen"),
        (
            |r| r.citizen.as_mut().unwrap().phone = String::new(),
            "citizen.phone",
        ),
        (
            |r| r.citizen.as_mut().unwrap().phone = "12345".into(),
            "citizen.phone",
        ),
        (
            |r| r.citizen.as_mut().unwrap().phone = "2380013800a".into(),
            "citizen.phone",
        ),
        (
            |r| r.citizen.as_mut().unwrap().name = "名".repeat(51),
            "citizen.name",
        ),
        (|r| r.idempotency_key = "k".repeat(129), "idempotency_key"),
        (|r| r.idempotency_key = "键".into(), "idempotency_key"),
    ];
    for (edit, field) in cases {
        let mut r = ok_request();
        edit(&mut r);
        let err = validate(&r).unwrap_err();
        assert_eq!(err.field, field, "{err:?}");
        // Each refusal reads in Chinese, and in English for those who ask.
        assert!(
            err.message
                .zh
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{err:?}"
        );
        assert!(
            err.message.en.is_ascii() && !err.message.en.is_empty(),
            "{err:?}"
        );
    }
}

#[test]
fn phones_normalise() {
    let cases = [
        ("13800138000", Some("13800138000")),
        ("138-0013-8000", Some("13800138000")),
        ("0532-88886666", Some("0532-88886666")),
        ("053288886666", Some("0532-88886666")),
        ("010 12345678", Some("010-12345678")),
        ("12800138000", None),
        ("1380013800", None),
        ("+8613800138000", None),
        ("", None),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_phone(raw).as_deref(), want, "{raw}");
    }
}

#[test]
fn tracking_numbers_use_the_china_day() {
    // 2026-11-22 17:30 UTC is already 2026-11-23 in Qingdao.
    let at = DateTime::parse_from_rfc3339("2026-11-22T17:30:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        tracking_no("370202", china_day(at), 42),
        "370202-20261123-00042"
    );
}

#[test]
fn request_hash_tells_retries_from_reuse() {
    let a = validate(&ok_request()).unwrap();
    let mut other = ok_request();
    other.content = "另一件事".into();
    let b = validate(&other).unwrap();
    assert_eq!(request_hash(&a), request_hash(&a.clone()));
    assert_ne!(request_hash(&a), request_hash(&b));
}

#[test]
fn id_numbers_kinds_and_confidentiality() {
    let mut r = ok_request();
    r.citizen.as_mut().unwrap().id_number = "11010519491231002x".into();
    r.confidential = true;
    let t = validate(&r).unwrap();
    assert_eq!(t.citizen_id_number.as_deref(), Some("11010519491231002X"));
    assert!(t.confidential);
    assert_eq!(t.kind, Kind::Livelihood);
    for bad in [
        "110105194912310021",
        "11010519491231002",
        "1101051949123100XX",
        "ABCDEFGHIJKLMNOPQR",
    ] {
        r.citizen.as_mut().unwrap().id_number = bad.into();
        assert_eq!(
            validate(&r).unwrap_err().field,
            "citizen.id_number",
            "{bad}"
        );
    }
    let mut r = ok_request();
    r.channel = "enterprise".into();
    assert_eq!(validate(&r).unwrap().kind, Kind::Development);
    r.kind = "enforcement".into();
    assert_eq!(validate(&r).unwrap().kind, Kind::Enforcement);
    r.kind = "military".into();
    assert_eq!(validate(&r).unwrap_err().field, "kind");
}

#[test]
fn attributes_are_checked_against_the_definitions() {
    use jiesu_intake::domain::attributes::{AttributeDef, AttributeOption, Datatype, check};
    let def = |code: &str, datatype, required, values: &[&str]| AttributeDef {
        code: code.into(),
        datatype,
        required,
        description: code.into(),
        datatype_description: String::new(),
        order: 0,
        values: values
            .iter()
            .map(|v| AttributeOption {
                key: (*v).into(),
                name: (*v).into(),
            })
            .collect(),
    };
    let defs = vec![
        def("when", Datatype::Singlevaluelist, true, &["day", "night"]),
        def("what", Datatype::Multivaluelist, false, &["a", "b"]),
        def("n", Datatype::Number, false, &[]),
        def("at", Datatype::Datetime, false, &[]),
    ];
    let given = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(c, v)| ((*c).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    };
    let ok = check(
        &defs,
        &given(&[
            ("when", &["night"]),
            ("what", &["a", "b"]),
            ("n", &["-1.5"]),
            ("at", &["2026-11-22T08:00:00+08:00"]),
        ]),
    )
    .unwrap();
    assert_eq!(ok.len(), 4);
    for (pairs, field) in [
        (given(&[]), "attributes.when"),
        (given(&[("when", &["dusk"])]), "attributes.when"),
        (given(&[("when", &["day", "night"])]), "attributes.when"),
        (
            given(&[("when", &["day"]), ("what", &["c"])]),
            "attributes.what",
        ),
        (
            given(&[("when", &["day"]), ("n", &["ten"])]),
            "attributes.n",
        ),
        (
            given(&[("when", &["day"]), ("n", &["inf"])]),
            "attributes.n",
        ),
        (
            given(&[("when", &["day"]), ("at", &["2026-11-22 08:00"])]),
            "attributes.at",
        ),
        (
            given(&[("when", &["day"]), ("colour", &["red"])]),
            "attributes.colour",
        ),
    ] {
        assert_eq!(check(&defs, &pairs).unwrap_err().field, field, "{pairs:?}");
    }
}

#[test]
fn webhook_signatures_freshness_and_rotation() {
    use jiesu_intake::domain::webhook::{Refusal, check_freshness, sign, verify};
    let body = br#"{"external_id":"1"}"#;
    let old = b"whsec_old".to_vec();
    let new = b"whsec_new".to_vec();
    let sig = sign(&old, "1700000000", "nonce-0123456789", body).unwrap();
    assert!(sig.starts_with("v1=") && sig.len() == 67);
    // Either of two valid keys; two signatures in one header.
    assert_eq!(
        verify(
            &[new.clone(), old.clone()],
            "1700000000",
            "nonce-0123456789",
            body,
            &sig
        ),
        Ok(())
    );
    let both = format!(
        "{}, {sig}",
        sign(b"whsec_other", "1700000000", "nonce-0123456789", body).unwrap()
    );
    assert_eq!(
        verify(
            std::slice::from_ref(&old),
            "1700000000",
            "nonce-0123456789",
            body,
            &both
        ),
        Ok(())
    );
    // Anything changed breaks it.
    assert_eq!(
        verify(
            std::slice::from_ref(&new),
            "1700000000",
            "nonce-0123456789",
            body,
            &sig
        ),
        Err(Refusal::SignatureInvalid)
    );
    assert_eq!(
        verify(
            std::slice::from_ref(&old),
            "1700000001",
            "nonce-0123456789",
            body,
            &sig
        ),
        Err(Refusal::SignatureInvalid)
    );
    assert_eq!(
        verify(
            std::slice::from_ref(&old),
            "1700000000",
            "nonce-0123456780",
            body,
            &sig
        ),
        Err(Refusal::SignatureInvalid)
    );
    assert_eq!(
        verify(
            std::slice::from_ref(&old),
            "1700000000",
            "nonce-0123456789",
            b"{}",
            &sig
        ),
        Err(Refusal::SignatureInvalid)
    );
    assert_eq!(
        verify(&[old], "1700000000", "nonce-0123456789", body, ""),
        Err(Refusal::SignatureMissing)
    );

    assert_eq!(
        check_freshness("1700000000", "nonce-0123456789", 1700000299, 300),
        Ok(1700000000)
    );
    assert_eq!(
        check_freshness("1700000000", "nonce-0123456789", 1699999701, 300),
        Ok(1700000000)
    );
    assert_eq!(
        check_freshness("1700000000", "nonce-0123456789", 1700000301, 300),
        Err(Refusal::TimestampStale)
    );
    assert_eq!(
        check_freshness("soon", "nonce-0123456789", 1700000000, 300),
        Err(Refusal::TimestampMissing)
    );
    assert_eq!(
        check_freshness("1700000000", "short", 1700000000, 300),
        Err(Refusal::NonceInvalid)
    );
    assert_eq!(
        check_freshness("1700000000", "nonce with spaces!!", 1700000000, 300),
        Err(Refusal::NonceInvalid)
    );
}
