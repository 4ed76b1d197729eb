//! Configuration through the environment, as an operator sets it.

use std::process::Command;

use jiesu_testkit::TestKeys;

use crate::platform::{LoneGateway, bin};

fn run_with(envs: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jiesu");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_bad_value_fails_start_up_naming_the_key() {
    let keys = TestKeys::new();
    let key = (
        "JIESU__AUTH__DEV_SIGNING_KEY_FILE",
        keys.dev_key_file.display().to_string(),
    );
    let cases = [
        (
            "JIESU__GATEWAY__HTTP_ADDR",
            "not-an-address",
            "gateway",
            "gateway.http_addr",
        ),
        (
            "JIESU__GATEWAY__MAX_BODY_BYTES",
            "lots",
            "gateway",
            "gateway.max_body_bytes",
        ),
        (
            "JIESU__GATEWAY__REQUEST_TIMEOUT",
            "soon",
            "gateway",
            "gateway.request_timeout",
        ),
        (
            "JIESU__BUS__MAX_DELIVER",
            "0",
            "dispatch",
            "bus.max_deliver",
        ),
        (
            "JIESU__AUTH__ALGORITHMS",
            "HS256",
            "gateway",
            "auth.algorithms",
        ),
        (
            "JIESU__GATEWAY__HTTP_ADR",
            "127.0.0.1:1",
            "gateway",
            "http_adr",
        ),
    ];
    for (var, value, target, named) in cases {
        let (code, stderr) = run_with(
            &[key.clone(), (var, value.to_owned())],
            &["serve", "--target", target],
        );
        assert_ne!(code, Some(0), "{var}={value} started");
        assert!(stderr.contains(named), "{var}={value}: {stderr}");
    }
    // Intake refuses to start without a keyring for personal data.
    let (code, stderr) = run_with(&[key], &["serve", "--target", "intake"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("pii.keyring_file"), "{stderr}");
    // `jiesu token` refuses without a development key.
    let (code, stderr) = run_with(&[], &["token", "--tenant", "370202", "--role", "agent"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("JIESU__AUTH__DEV_SIGNING_KEY_FILE"),
        "{stderr}"
    );
}

#[tokio::test]
async fn environment_overrides_apply_and_sigterm_drains() {
    // LoneGateway sets JIESU__GATEWAY__HTTP_ADDR and JIESU__ADMIN__ADDR to
    // fresh ports and waits for /healthz there: the overrides applied.
    let gw = LoneGateway::start("config", vec![]).await;
    let client = reqwest::Client::new();
    let admin = |path: &str| format!("http://127.0.0.1:{}{path}", gw.admin);
    let ready = client.get(admin("/readyz")).send().await.expect("readyz");
    assert!(ready.status().is_success());
    let metrics = client.get(admin("/metrics")).send().await.expect("metrics");
    assert!(metrics.status().is_success());
    // A token minted by the binary is accepted by it.
    let out = Command::new(bin())
        .args(["token", "--tenant", "370202", "--role", "agent"])
        .env_clear()
        .env(
            "JIESU__AUTH__DEV_SIGNING_KEY_FILE",
            gw.keys.dev_key_file.display().to_string(),
        )
        .output()
        .expect("token");
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let r = client
        .get(format!("http://127.0.0.1:{}/api/v1/categories", gw.http))
        .bearer_auth(&token)
        .send()
        .await
        .expect("categories");
    // Verified (not 401); intake is not running, so 503.
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        gw.terminate().await,
        Some(0),
        "SIGTERM must drain and exit cleanly"
    );
}
