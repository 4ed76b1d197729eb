//! Photos and recordings: type checked by content, stored through the
//! object store, served only to those who may see the ticket.

use jiesu_auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack};

fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut b = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    b.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    b
}

async fn upload(
    s: &Stack,
    token: &str,
    ticket: &str,
    ct: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url(&format!("/api/v1/tickets/{ticket}/attachments")))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn attachments_are_typed_by_content_stored_and_served_to_those_who_may_see() {
    let s = stack().await;
    let me = s.keys.token("370202", &[Role::Citizen], "citizen-7");
    let body = json!({
        "channel": "photo", "nature": "report", "category": "SH01",
        "content": "随手拍：楼道堆满杂物", "location": {"lat": 36.06, "lon": 120.38},
        "citizen": {"phone": "13800007777"}
    });
    let (status, t) = s.post(Some(&me), body).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let id = t["id"].as_str().unwrap().to_owned();

    // The client says text/plain; the bytes say JPEG.
    let photo = jpeg(1, 20_000);
    let (status, a) = upload(&s, &me, &id, "text/plain", photo.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["kind"], "image");
    assert_eq!(a["content_type"], "image/jpeg");
    assert_eq!(a["size_bytes"], photo.len());
    // The same file again is the same attachment.
    let (_, again) = upload(&s, &me, &id, "image/jpeg", photo.clone()).await;
    assert_eq!(again["id"], a["id"]);
    let mut amr = b"#!AMR\n".to_vec();
    amr.extend([0x3c; 500]);
    let (status, rec) = upload(&s, &s.agent(), &id, "application/octet-stream", amr).await;
    assert_eq!(status, StatusCode::CREATED, "{rec}");
    assert_eq!(rec["content_type"], "audio/amr");

    // The bytes are in the object store under tenant/ticket/attachment.
    let stored = s
        .attachments_dir
        .join("370202")
        .join(&id)
        .join(a["id"].as_str().unwrap());
    assert_eq!(std::fs::read(&stored).unwrap(), photo);

    // Read back: listed on the ticket, served with its type, to the owner
    // and agents; to nobody else.
    let (_, view) = s.get(&me, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(view["attachments"].as_array().unwrap().len(), 2);
    let url = view["attachments"][0]["url"].as_str().unwrap().to_owned();
    let fetch = |token: String| {
        let s = &s;
        let url = url.clone();
        async move {
            s.http
                .get(s.url(&url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let r = fetch(me.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().to_vec(), photo);
    assert_eq!(fetch(s.agent()).await.status(), StatusCode::OK);
    assert_eq!(
        fetch(s.keys.token("370202", &[Role::Citizen], "citizen-8"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(s.keys.token("370203", &[Role::Agent], "agent-x"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s.http.get(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Refusals: what is not an image or recording, whatever it is called.
    for bad in [
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(),
        b"%PDF-1.7\n".to_vec(),
        b"<html><script>alert(1)</script></html>".to_vec(),
        b"MZ\x90\x00\x03".to_vec(),
        Vec::new(),
    ] {
        let (status, v) = upload(&s, &me, &id, "image/jpeg", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], "data");
    }
    // Over the image limit (256 KiB in this stack), and over the gateway's.
    let (status, v) = upload(&s, &me, &id, "image/jpeg", jpeg(2, 300 * 1024)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("最多"), "{v}");
    let (status, v) = upload(&s, &me, &id, "image/jpeg", jpeg(3, 21 << 20)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["code"], "body_too_large");
    // Nine per ticket.
    for i in 0..7u8 {
        let (status, v) = upload(&s, &me, &id, "image/jpeg", jpeg(10 + i, 100)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, v) = upload(&s, &me, &id, "image/jpeg", jpeg(99, 100)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("最多 9 个附件"),
        "{v}"
    );
    // Roles and ownership.
    let (status, _) = upload(
        &s,
        &s.keys.token("370202", &[Role::Handler], "h"),
        &id,
        "image/jpeg",
        jpeg(5, 10),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = upload(
        &s,
        &s.keys.token("370202", &[Role::Citizen], "citizen-8"),
        &id,
        "image/jpeg",
        jpeg(6, 10),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
