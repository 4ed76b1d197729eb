//! Starting grid in a test, shared by every test binary: on port 0,
//! against the test's database, with the test's bus and keys
//! ([`TestEnv`]); and a request carrying such a token.

use std::time::Duration;

use jiesu_grid::GridTarget;
use jiesu_proto::grid::grid_service_client::GridServiceClient;
use jiesu_testkit::{Spawned, TestDb, TestEnv};
use tonic::{Request, transport::Channel};

/// Grid on `db`, polling the layer version every `refresh_interval`
/// (stopped when the returned handle is dropped); a client connected to it.
pub async fn start(
    kit: &TestEnv,
    db: &TestDb,
    refresh_interval: Duration,
) -> (Spawned, GridServiceClient<Channel>) {
    let grid = kit
        .spawn_on::<GridTarget>(db, |cfg| cfg.refresh_interval = refresh_interval)
        .await;
    let client = GridServiceClient::connect(grid.url()).await.unwrap();
    (grid, client)
}

pub fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    jiesu_auth::bearer_metadata(&mut r, token).unwrap();
    r
}
