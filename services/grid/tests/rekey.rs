//! Key rotation reaches grid's sealed people: after `rekey` every worker's,
//! household's and key person's field is under the new key and opens with
//! it alone, bound to the same row and column as when it was sealed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::authed;
use jiesu_auth::Role;
use jiesu_grid::Migrations;
use jiesu_pii::Keyring;
use jiesu_proto::grid::{
    AssignWorkerRequest, Household, ImportLayerRequest, KeyPerson, Resident, Worker,
};
use jiesu_testkit::{TestDb, TestEnv};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

#[tokio::test]
async fn rekey_moves_grid_people_to_the_new_key() {
    let db = TestDb::new::<Migrations>("grid").await;
    let kit = TestEnv::new().await;
    let keys = &kit.keys;
    let (_grid, mut c) = common::start(&kit, &db, Duration::from_millis(200)).await;
    let admin = keys.token("370202", &[Role::TenantAdmin], "admin-1");
    let layer = json!({"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"code": "G1", "kind": "basic", "community_code": "370202006001"},
        "geometry": {"type": "Polygon", "coordinates": [[[120.38, 36.06], [120.39, 36.06], [120.39, 36.07], [120.38, 36.07], [120.38, 36.06]]]}
    }]});
    c.import_layer(authed(
        &admin,
        ImportLayerRequest {
            geojson: layer.to_string(),
        },
    ))
    .await
    .unwrap();
    let w = c
        .save_worker(authed(
            &admin,
            Worker {
                account: "gw-1".into(),
                name: "王海燕".into(),
                phone: "13800138000".into(),
                kind: "full_time".into(),
                active: true,
                ..Worker::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    c.assign_worker(authed(
        &admin,
        AssignWorkerRequest {
            worker_id: w.id,
            grid_code: "G1".into(),
            remove: false,
        },
    ))
    .await
    .unwrap();
    c.save_household(authed(
        &admin,
        Household {
            grid_code: "G1".into(),
            room: "101".into(),
            head_name: "赵一".into(),
            phone: "13700000001".into(),
            members: 2,
            residents: vec![Resident {
                name: "赵一".into(),
                relation: "户主".into(),
                ..Resident::default()
            }],
            ..Household::default()
        },
    ))
    .await
    .unwrap();
    let person = c
        .save_key_person(authed(
            &admin,
            KeyPerson {
                grid_code: "G1".into(),
                category: "elderly_alone".into(),
                name: "张秀兰".into(),
                id_number: "370202194501011234".into(),
                active: true,
                ..KeyPerson::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // The operator adds k2 and makes it active, keeping k1.
    let old: Value =
        serde_json::from_str(&std::fs::read_to_string(&keys.keyring_file).unwrap()).unwrap();
    let old_id = old["active"].as_str().unwrap().to_owned();
    let generated: Value = serde_json::from_str(&Keyring::generate_json().unwrap()).unwrap();
    let mut both = old.clone();
    both["active"] = json!("k2");
    both["keys"]["k2"] = generated["keys"]["k1"].clone();
    let both_ring = Keyring::from_json(&both.to_string()).unwrap();
    let conn = db.connect().await;
    let columns = jiesu_grid::rekey::COLUMNS;
    // 1 worker phone, 4 household fields, 5 key-person fields.
    assert_eq!(
        jiesu_db::rekey::remaining(&conn, &both_ring, columns)
            .await
            .unwrap(),
        10
    );
    let report = jiesu_db::rekey::rekey(&conn, &both_ring, columns, 3)
        .await
        .unwrap();
    assert_eq!(report.total(), 10);
    assert_eq!(
        jiesu_db::rekey::remaining(&conn, &both_ring, columns)
            .await
            .unwrap(),
        0
    );

    // With the old key gone, the new one alone opens what the service sealed.
    let mut only_new = both.clone();
    only_new["keys"].as_object_mut().unwrap().remove(&old_id);
    let new_ring = Keyring::from_json(&only_new.to_string()).unwrap();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT name_enc, id_number_enc FROM key_persons WHERE id = '{}'",
                person.id
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    let aad = |field: &str| format!("grid.key_persons.{field}:370202:{}", person.id);
    let name: String = row.try_get("", "name_enc").unwrap();
    let id_number: String = row.try_get("", "id_number_enc").unwrap();
    assert_eq!(new_ring.decrypt(&name, &aad("name")).unwrap(), "张秀兰");
    assert_eq!(
        new_ring.decrypt(&id_number, &aad("id_number")).unwrap(),
        "370202194501011234"
    );
}
