//! Key rotation without downtime: data sealed with the old key is
//! re-encrypted with the new one while intake serves, after which the old
//! key can be removed.

use std::sync::Arc;

use jiesu_auth::Role;
use jiesu_intake::{Intake, IntakeConfig, rekey::COLUMNS};
use jiesu_pii::Keyring;
use jiesu_proto::intake::{
    AddInformationRequest, GetTicketRequest, intake_service_client::IntakeServiceClient,
};
use jiesu_service::Target;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{authed, start, ticket};

fn ring(doc: &Value) -> Keyring {
    Keyring::from_json(&doc.to_string()).unwrap()
}

#[tokio::test]
async fn rekey_moves_every_value_to_the_new_key_and_the_old_key_can_go() {
    let mut env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let mut ids = Vec::new();
    for phone in ["13800138001", "13800138002", "13800138003"] {
        let mut t = ticket(phone);
        t.citizen.as_mut().unwrap().id_number = "11010519491231002X".into();
        ids.push(
            env.client
                .create_ticket(authed(&agent, t))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    env.client
        .add_information(authed(
            &agent,
            AddInformationRequest {
                ticket_id: ids[0].clone(),
                text: "补充：电话13900001111".into(),
            },
        ))
        .await
        .unwrap();

    // The operator adds k2 and makes it active, keeping k1.
    let old: Value =
        serde_json::from_str(&std::fs::read_to_string(&env.kit.keys.keyring_file).unwrap())
            .unwrap();
    let old_id = old["active"].as_str().unwrap().to_owned();
    let k2 = Keyring::generate_json().unwrap();
    let k2: Value = serde_json::from_str(&k2).unwrap();
    let both_doc = with_new_key(&old, &k2);
    let both = ring(&both_doc);
    let conn = env.db.connect().await;
    let before = jiesu_db::rekey::remaining(&conn, &both, COLUMNS)
        .await
        .unwrap();
    // 3 tickets × (content, address, name, phone, id number) + 1 supplement.
    assert_eq!(before, 16);

    let report = jiesu_db::rekey::rekey(&conn, &both, COLUMNS, 4)
        .await
        .unwrap();
    assert_eq!(report.total(), 16);
    assert_eq!(
        jiesu_db::rekey::remaining(&conn, &both, COLUMNS)
            .await
            .unwrap(),
        0
    );
    let stale = env
        .db
        .count(&format!(
            "SELECT count(*) FROM tickets WHERE citizen_phone_enc LIKE 'v1.{old_id}.%' OR content_enc LIKE 'v1.{old_id}.%'"
        ))
        .await;
    assert_eq!(stale, 0);
    // Repeating is harmless.
    assert_eq!(
        jiesu_db::rekey::rekey(&conn, &both, COLUMNS, 4)
            .await
            .unwrap()
            .total(),
        0
    );

    // The old key is removed: an intake holding only k2 reads everything.
    let mut only_new = both_doc.clone();
    only_new["keys"].as_object_mut().unwrap().remove(&old_id);
    let stop = CancellationToken::new();
    let mut cfg = IntakeConfig::default();
    Intake::place(&mut cfg, "127.0.0.1:0", &env.db.url);
    let with_new_key_only = env
        .kit
        .env(stop.clone())
        .await
        .with_keyring(Arc::new(ring(&only_new)));
    let second = Intake::build(&cfg, &with_new_key_only).await.unwrap();
    let mut client = IntakeServiceClient::connect(format!("http://{}", second.addr()))
        .await
        .unwrap();
    tokio::spawn(second.run_until_stopped());
    for (id, tail) in ids.iter().zip(["8001", "8002", "8003"]) {
        let t = client
            .get_ticket(authed(&agent, GetTicketRequest { id: id.clone() }))
            .await
            .unwrap()
            .into_inner();
        let c = t.citizen.unwrap();
        assert_eq!(c.phone, format!("138****{tail}"));
        assert_eq!(c.id_number, "110105********002X");
    }
    stop.cancel();
}

/// The old keyring plus `k2` (taken from a generated keyring), `k2` active.
fn with_new_key(old: &Value, generated: &Value) -> Value {
    let mut d = old.clone();
    d["active"] = json!("k2");
    d["keys"]["k2"] = generated["keys"]["k1"].clone();
    d
}
