//! Starting grid for a test, and the layers, workers and checks the
//! tests share.

use std::time::Duration;

use jiesu_auth::{Role, TokenSpec};
use jiesu_bus::Bus;
use jiesu_grid::Migrations;
use jiesu_proto::{
    grid::{
        AssignWorkerRequest, ImportLayerRequest, Worker, grid_service_client::GridServiceClient,
    },
    status::problem,
};
use jiesu_testkit::{Spawned, TestDb, TestEnv, wait_until};
use serde_json::{Value, json};
use tonic::{Code, Status, transport::Channel};

use crate::common;
pub use crate::common::authed;

pub const ZS: &str = "370202006001";
pub const OTHER: &str = "370202006002";

pub struct Grid {
    pub db: TestDb,
    pub kit: TestEnv,
    pub bus: Bus,
    client: GridServiceClient<Channel>,
    _grid: Spawned,
}

impl Grid {
    pub async fn start() -> Grid {
        let db = TestDb::new::<Migrations>("grid").await;
        let kit = TestEnv::new().await;
        let (grid, client) = common::start(&kit, &db, Duration::from_millis(200)).await;
        let bus = kit.bus.connect().await;
        Grid {
            db,
            kit,
            bus,
            client,
            _grid: grid,
        }
    }

    /// A client to call grid with.
    pub fn c(&self) -> GridServiceClient<Channel> {
        self.client.clone()
    }

    pub fn admin(&self) -> String {
        self.kit
            .keys
            .token("370202", &[Role::TenantAdmin], "admin-1")
    }

    pub fn token(&self, role: Role, sub: &str) -> String {
        self.kit.keys.token("370202", &[role], sub)
    }

    /// A token of `role` whose scope is the region `scope`.
    pub fn scoped(&self, role: Role, sub: &str, scope: &str) -> String {
        self.kit.keys.token_with(TokenSpec {
            sub: sub.into(),
            tenant: "370202".into(),
            scope: Some(scope.into()),
            roles: vec![role],
            unit: None,
            grids: vec![],
            ttl: Duration::from_secs(600),
        })
    }

    /// Imports a layer as the tenant admin; it must be accepted.
    pub async fn import(&self, features: Vec<Value>) {
        self.c()
            .import_layer(authed(
                &self.admin(),
                ImportLayerRequest {
                    geojson: layer(features),
                },
            ))
            .await
            .unwrap();
    }

    /// How many `grid.<event>` facts were published, once there is one.
    pub async fn published(&self, event: &str) -> i64 {
        let sql = format!(
            "SELECT count(*) FROM bus_outbox WHERE event = 'grid.{event}' \
             AND published_at IS NOT NULL"
        );
        wait_until(Duration::from_secs(20), event, || async {
            let n = self.db.count(&sql).await;
            (n > 0).then_some(n)
        })
        .await
    }
}

/// What a refusal says: its gRPC code, `jiesu-code`, field and (Chinese)
/// message.
pub fn refusal<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
) -> (Code, String, Option<String>, String) {
    let s = r.unwrap_err();
    let p = problem(&s);
    (s.code(), p.code, p.field, p.message.zh)
}

/// The code and field of a refusal.
pub fn refused<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
) -> (Code, Option<String>) {
    let (code, _, field, _) = refusal(r);
    (code, field)
}

pub fn square(
    code: &str,
    kind: &str,
    community: &str,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
) -> Value {
    json!({
        "type": "Feature",
        "properties": {"code": code, "name": format!("{code}网格"), "kind": kind, "community_code": community},
        "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    })
}

pub fn layer(features: Vec<Value>) -> String {
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

/// G1 and G2 side by side in 燕儿岛 community, G3 in the next community.
pub async fn two_grids(g: &Grid) {
    g.import(vec![
        square("G1", "basic", ZS, 120.38, 36.06, 120.40, 36.07),
        square("G2", "basic", ZS, 120.40, 36.06, 120.42, 36.07),
        square("G3", "basic", OTHER, 120.38, 36.07, 120.40, 36.08),
    ])
    .await;
}

/// A worker with account `account`, assigned to `grid`; returns its id.
pub async fn worker(g: &Grid, account: &str, name: &str, grid: &str) -> String {
    let w = g
        .c()
        .save_worker(authed(
            &g.admin(),
            Worker {
                account: account.into(),
                name: name.into(),
                phone: "13800138000".into(),
                kind: "full_time".into(),
                active: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.phone, "138****8000", "phones are masked");
    let assigned = g
        .c()
        .assign_worker(authed(
            &g.admin(),
            AssignWorkerRequest {
                worker_id: w.id.clone(),
                grid_code: grid.into(),
                remove: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.grids, vec![grid.to_owned()]);
    w.id
}
