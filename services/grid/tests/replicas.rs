//! Two grid replicas on one database: an import through one reaches the
//! other's in-memory index, through the layer version each polls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::authed;
use jiesu_auth::Role;
use jiesu_grid::Migrations;
use jiesu_proto::grid::{
    ImportLayerRequest, LocateRequest, LocateResponse, grid_service_client::GridServiceClient,
};
use jiesu_testkit::{Spawned, TestDb, TestEnv, wait_until};
use serde_json::json;
use tonic::transport::Channel;

fn layer(code: &str, x0: f64, x1: f64) -> String {
    json!({"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"code": code, "name": code, "kind": "basic", "community_code": "370202006001"},
        "geometry": {"type": "Polygon", "coordinates": [[[x0, 36.06], [x1, 36.06], [x1, 36.07], [x0, 36.07], [x0, 36.06]]]}
    }]})
    .to_string()
}

async fn replica(kit: &TestEnv, db: &TestDb) -> (Spawned, GridServiceClient<Channel>) {
    common::start(kit, db, Duration::from_millis(200)).await
}

async fn locate(c: &GridServiceClient<Channel>, token: &str, lon: f64) -> LocateResponse {
    c.clone()
        .locate(authed(
            token,
            LocateRequest {
                lat: 36.065,
                lon,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_import_through_one_replica_reaches_the_other() {
    let db = TestDb::new::<Migrations>("grid").await;
    let kit = TestEnv::new().await;
    let keys = &kit.keys;
    let (_ra, a) = replica(&kit, &db).await;
    let (_rb, b) = replica(&kit, &db).await;
    let admin = keys.token("370202", &[Role::TenantAdmin], "admin-1");
    let worker = keys.token("370202", &[Role::GridWorker], "gw-1");
    assert!(locate(&b, &worker, 120.385).await.grid.is_none());

    a.clone()
        .import_layer(authed(
            &admin,
            ImportLayerRequest {
                geojson: layer("G1", 120.38, 120.39),
            },
        ))
        .await
        .unwrap();
    // Replica A answers at once; B once it has seen the new version.
    assert_eq!(locate(&a, &worker, 120.385).await.grid.unwrap().code, "G1");
    wait_until(Duration::from_secs(10), "replica B sees G1", || async {
        locate(&b, &worker, 120.385)
            .await
            .grid
            .filter(|g| g.code == "G1")
    })
    .await;

    // And the other way round: B moves G1 east; A follows.
    b.clone()
        .import_layer(authed(
            &admin,
            ImportLayerRequest {
                geojson: layer("G1", 120.40, 120.41),
            },
        ))
        .await
        .unwrap();
    // Each import was announced once, with what it changed.
    wait_until(
        Duration::from_secs(10),
        "grids.changed published",
        || async {
            let sent = db
                .count(
                    "SELECT count(*) FROM bus_outbox WHERE event = 'grid.grids.changed' \
                 AND published_at IS NOT NULL",
                )
                .await;
            (sent == 2).then_some(())
        },
    )
    .await;
    wait_until(
        Duration::from_secs(10),
        "replica A sees G1 moved",
        || async {
            let old = locate(&a, &worker, 120.385).await.grid;
            let new = locate(&a, &worker, 120.405).await.grid;
            (old.is_none() && new.is_some()).then_some(())
        },
    )
    .await;
}

/// A replica whose index is behind (it has not polled yet) must not split,
/// merge or import on its stale view: it refuses, catches up, and the
/// retry goes through.
#[tokio::test]
async fn a_replica_behind_refuses_to_reshape_until_it_has_caught_up() {
    let db = TestDb::new::<Migrations>("grid").await;
    let kit = TestEnv::new().await;
    let keys = &kit.keys;
    let (_ra, a) = replica(&kit, &db).await;
    // B polls once an hour: it stays behind until something makes it look.
    let (_rb, b) = common::start(&kit, &db, Duration::from_secs(3600)).await;
    let admin = keys.token("370202", &[Role::TenantAdmin], "admin-1");
    a.clone()
        .import_layer(authed(
            &admin,
            ImportLayerRequest {
                geojson: layer("G1", 120.38, 120.40),
            },
        ))
        .await
        .unwrap();
    let parts = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "G1-A"},
         "geometry": {"type": "Polygon", "coordinates": [[[120.38, 36.06], [120.39, 36.06], [120.39, 36.07], [120.38, 36.07], [120.38, 36.06]]]}},
        {"type": "Feature", "properties": {"code": "G1-B"},
         "geometry": {"type": "Polygon", "coordinates": [[[120.39, 36.06], [120.40, 36.06], [120.40, 36.07], [120.39, 36.07], [120.39, 36.06]]]}}
    ]})
    .to_string();
    let split = || {
        let mut b = b.clone();
        let req = authed(
            &admin,
            jiesu_proto::grid::SplitGridRequest {
                code: "G1".into(),
                parts_geojson: parts.clone(),
            },
        );
        async move { b.split_grid(req).await }
    };
    // B has never seen G1.
    let refused = split().await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    // An import through B refused as stale also makes B catch up.
    let stale = b
        .clone()
        .import_layer(authed(
            &admin,
            ImportLayerRequest {
                geojson: layer("G9", 120.50, 120.51),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted, "{stale:?}");
    let done = split().await.unwrap().into_inner();
    assert_eq!(done.created, vec!["G1-A".to_owned(), "G1-B".to_owned()]);
    // Now A is the one behind for a moment; its refresh (200 ms) or a
    // refusal brings it up to date.
    let worker = keys.token("370202", &[Role::GridWorker], "gw-1");
    wait_until(
        Duration::from_secs(10),
        "replica A sees the parts",
        || async {
            locate(&a, &worker, 120.385)
                .await
                .grid
                .filter(|g| g.code == "G1-A")
        },
    )
    .await;
}
