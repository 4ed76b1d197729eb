//! Verification against real keys: every refusal the platform promises.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use jiesu_auth::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "jiesu-auth-{tag}-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn uuid_like() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b)
}

struct Fixture {
    signer: DevSigner,
    verifier: Verifier,
    _dir: std::path::PathBuf,
}

async fn fixture() -> Fixture {
    let dir = temp_dir("fx");
    let key_path = dir.join("dev.pem");
    std::fs::write(&key_path, generate_dev_key_pem().unwrap()).unwrap();
    let cfg = AuthConfig {
        dev_signing_key_file: key_path.display().to_string(),
        ..AuthConfig::default()
    };
    Fixture {
        signer: DevSigner::from_file(&key_path).unwrap(),
        verifier: Verifier::start(&cfg).await.unwrap(),
        _dir: dir,
    }
}

fn claims() -> serde_json::Value {
    json!({
        "sub": "agent-7",
        "tenant": "370202",
        "roles": ["agent"],
        "iss": "jiesu-dev",
        "aud": "jiesu",
        "exp": now() + 600,
    })
}

fn with(mut v: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    v[key] = value;
    v
}

#[tokio::test]
async fn a_good_token_gives_the_principal() {
    let f = fixture().await;
    let token = f.signer.sign_json(&claims()).unwrap();
    let p = f
        .verifier
        .verify_bearer(Some(&format!("Bearer {token}")))
        .unwrap();
    assert_eq!(p.sub, "agent-7");
    assert_eq!(p.tenant.code(), "370202");
    assert_eq!(p.roles, vec![Role::Agent]);
}

#[tokio::test]
async fn audience_may_be_an_array() {
    let f = fixture().await;
    let token = f
        .signer
        .sign_json(&with(claims(), "aud", json!(["other", "jiesu"])))
        .unwrap();
    assert!(f.verifier.verify(&token).is_ok());
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture().await;
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "none", "typ": "JWT", "kid": f.signer.kid()}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let err = f.verifier.verify(&format!("{header}.{body}.")).unwrap_err();
    assert!(
        matches!(err, AuthError::AlgorithmNotAllowed | AuthError::Malformed),
        "{err:?}"
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let f = fixture().await;
    let jwks: serde_json::Value = serde_json::from_str(&f.signer.jwks_json()).unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let public_raw = URL_SAFE_NO_PAD.decode(&x).unwrap();
    for secret in [
        x.as_bytes().to_vec(),
        public_raw,
        f.signer.jwks_json().into_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(f.signer.kid().to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(
            f.verifier.verify(&token).unwrap_err(),
            AuthError::AlgorithmNotAllowed
        );
    }
}

#[tokio::test]
async fn expiry_beyond_leeway_is_refused_within_leeway_accepted() {
    let f = fixture().await;
    let late = f
        .signer
        .sign_json(&with(claims(), "exp", json!(now() - 3600)))
        .unwrap();
    assert_eq!(f.verifier.verify(&late).unwrap_err(), AuthError::Expired);
    let just = f
        .signer
        .sign_json(&with(claims(), "exp", json!(now() - 10)))
        .unwrap();
    assert!(f.verifier.verify(&just).is_ok());
}

#[tokio::test]
async fn wrong_audience_and_issuer_are_refused() {
    let f = fixture().await;
    let aud = f
        .signer
        .sign_json(&with(claims(), "aud", json!("someone-else")))
        .unwrap();
    assert_eq!(
        f.verifier.verify(&aud).unwrap_err(),
        AuthError::WrongAudience
    );
    let iss = f
        .signer
        .sign_json(&with(claims(), "iss", json!("https://evil.example")))
        .unwrap();
    assert_eq!(f.verifier.verify(&iss).unwrap_err(), AuthError::WrongIssuer);
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let f = fixture().await;
    let other = DevSigner::from_pem(&generate_dev_key_pem().unwrap()).unwrap();
    let token = other.sign_json(&claims()).unwrap();
    assert_eq!(
        f.verifier.verify(&token).unwrap_err(),
        AuthError::UnknownKey
    );
}

#[tokio::test]
async fn exp_as_a_string_is_refused() {
    let f = fixture().await;
    let token = f
        .signer
        .sign_json(&with(claims(), "exp", json!((now() + 600).to_string())))
        .unwrap();
    assert!(matches!(
        f.verifier.verify(&token).unwrap_err(),
        AuthError::BadClaim(_)
    ));
}

#[tokio::test]
async fn missing_claims_and_bad_tenant_are_refused() {
    let f = fixture().await;
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        f.verifier
            .verify(&f.signer.sign_json(&no_exp).unwrap())
            .unwrap_err(),
        AuthError::BadClaim(_)
    ));
    let bad_tenant = with(claims(), "tenant", json!("not-a-region"));
    assert_eq!(
        f.verifier
            .verify(&f.signer.sign_json(&bad_tenant).unwrap())
            .unwrap_err(),
        AuthError::BadClaim("tenant".into())
    );
}

#[tokio::test]
async fn a_tampered_body_fails_the_signature() {
    let f = fixture().await;
    let token = f.signer.sign_json(&claims()).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] =
        URL_SAFE_NO_PAD.encode(with(claims(), "roles", json!(["platform_admin"])).to_string());
    assert_eq!(
        f.verifier.verify(&parts.join(".")).unwrap_err(),
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn missing_or_non_bearer_header_is_refused() {
    let f = fixture().await;
    assert_eq!(
        f.verifier.verify_bearer(None).unwrap_err(),
        AuthError::MissingToken
    );
    assert_eq!(
        f.verifier
            .verify_bearer(Some("Basic YWxhZGRpbjpvcGVu"))
            .unwrap_err(),
        AuthError::MissingToken
    );
    assert_eq!(
        f.verifier
            .verify_bearer(Some("Bearer not.a.jwt"))
            .unwrap_err(),
        AuthError::Malformed
    );
}

#[tokio::test]
async fn jwks_file_rotation_is_picked_up_on_an_unknown_kid() {
    let dir = temp_dir("rot");
    let jwks = dir.join("jwks.json");
    let old = DevSigner::from_pem(&generate_dev_key_pem().unwrap()).unwrap();
    std::fs::write(&jwks, old.jwks_json()).unwrap();
    let cfg = AuthConfig {
        jwks_file: jwks.display().to_string(),
        jwks_min_refresh: Duration::from_millis(50),
        ..AuthConfig::default()
    };
    let verifier = Verifier::start(&cfg).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    verifier.spawn_refresh(stop.clone());
    assert!(verifier.verify(&old.sign_json(&claims()).unwrap()).is_ok());

    let new = DevSigner::from_pem(&generate_dev_key_pem().unwrap()).unwrap();
    std::fs::write(&jwks, new.jwks_json()).unwrap();
    let token = new.sign_json(&claims()).unwrap();
    assert_eq!(verifier.verify(&token).unwrap_err(), AuthError::UnknownKey);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if verifier.verify(&token).is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotated key never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
}

#[tokio::test]
async fn jwks_url_is_fetched() {
    let signer = DevSigner::from_pem(&generate_dev_key_pem().unwrap()).unwrap();
    let body = signer.jwks_json();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cfg = AuthConfig {
        jwks_url: format!("http://{addr}/.well-known/jwks.json"),
        ..AuthConfig::default()
    };
    let verifier = Verifier::start(&cfg).await.unwrap();
    assert_eq!(verifier.key_count(), 1);
    assert!(
        verifier
            .verify(&signer.sign_json(&claims()).unwrap())
            .is_ok()
    );
}

#[tokio::test]
async fn symmetric_keys_in_a_jwks_are_ignored() {
    let text =
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s1", "alg": "HS256"}]}).to_string();
    let (keys, skipped) = parse_jwks(&text, &[Algorithm::EdDSA, Algorithm::HS256]).unwrap();
    assert!(keys.is_empty());
    assert_eq!(skipped, vec!["s1".to_owned()]);
}

#[test]
fn config_without_any_key_source_names_the_key() {
    let err = AuthConfig::default().validate().unwrap_err().to_string();
    assert!(err.contains("auth.jwks_url"), "{err}");
    let err = AuthConfig {
        algorithms: vec!["HS256".into()],
        dev_signing_key_file: "x".into(),
        ..AuthConfig::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("auth.algorithms"), "{err}");
}

#[test]
fn jwks_urls_must_be_https_unless_loopback() {
    let with = |url: &str| AuthConfig {
        jwks_url: url.into(),
        ..AuthConfig::default()
    };
    for ok in [
        "https://idp.example/jwks.json",
        "http://127.0.0.1:8080/jwks",
        "http://localhost/jwks",
        "http://[::1]:9000/jwks",
    ] {
        assert!(with(ok).validate().is_ok(), "{ok}");
    }
    for bad in [
        "http://idp.example/jwks.json",
        "http://10.0.0.5/jwks",
        "http://127.0.0.1.evil.example/jwks",
        "http://localhost@evil.example/jwks",
        "ftp://idp.example/jwks",
    ] {
        let err = with(bad).validate().unwrap_err().to_string();
        assert!(err.contains("auth.jwks_url"), "{bad}: {err}");
    }
}
