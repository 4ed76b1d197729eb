//! Locating points among 150,000 grids: the in-memory index against
//! PostgreSQL + PostGIS on the same polygons and points.
//!
//! ```text
//! cargo bench -p jiesu-grid --bench locate -- [--grids 150000] [--points 100000] [--no-postgis]
//! ```
//!
//! Generates `--grids` polygons of 8 to 16 vertices (one per cell of a
//! square lattice, star-shaped around the cell's centre, so neighbours
//! never overlap and some points fall between grids) and `--points` random
//! points over the same area, deterministically. Measures for the index:
//! build time, resident memory added, and per-lookup p50/p99 and lookups/s
//! on one thread. Then loads the same polygons into a fresh database with
//! PostGIS (`geometry(MultiPolygon, 4326)`, GiST index) and asks
//! `ST_Contains` for each point over one connection, and checks that both
//! answer the same grid (or none) for every point.

use std::time::{Duration, Instant};

use geo::MultiPolygon;
use jiesu_grid::domain::{index::GridIndex, layer::Grid};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

mod common;

use common::{LAT0, LON0, Rng, SPAN, generate, geojson, pct, rss_bytes};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A database with no tables of ours: the bench makes its own.
struct NoTables;

impl jiesu_db::SqlMigrations for NoTables {
    fn list() -> Vec<jiesu_db::SqlMigration> {
        Vec::new()
    }
}

/// The same lookups through the grid service's gRPC interface: the grids
/// stored in a fresh database, a `GridTarget` in this process loading them,
/// a client with a grid worker's token. One caller in sequence for
/// latency, then 32 concurrent callers for throughput.
async fn grpc(index: &GridIndex, points: &[(f64, f64)], answers: &[Option<String>]) -> Res<()> {
    use jiesu_proto::grid::{LocateRequest, grid_service_client::GridServiceClient};
    let db = jiesu_testkit::TestDb::new::<jiesu_grid::Migrations>("grid").await;
    let conn = db.connect().await;
    let t = Instant::now();
    let pairs: Vec<(Grid, String)> = index
        .grids()
        .iter()
        .map(|g| {
            let mut g = g.clone();
            g.community = "370202006001".into();
            let geo = geojson(&g.shape);
            (g, geo)
        })
        .collect();
    for chunk in pairs.chunks(5000) {
        jiesu_grid::store::upsert(&conn, "370202", chunk, None, None).await?;
    }
    let stored = t.elapsed();
    let kit = jiesu_testkit::TestEnv::new().await;
    let keys = &kit.keys;
    let t = Instant::now();
    let running = kit.spawn_on::<jiesu_grid::GridTarget>(&db, |_| {}).await;
    let start_up = t.elapsed();
    let client = GridServiceClient::connect(running.url()).await?;
    let token = keys.token("370202", &[jiesu_auth::Role::GridWorker], "bench");
    let call = |c: GridServiceClient<tonic::transport::Channel>,
                lat: f64,
                lon: f64,
                token: String| async move {
        let mut req = tonic::Request::new(LocateRequest {
            lat,
            lon,
            ..Default::default()
        });
        jiesu_auth::bearer_metadata(&mut req, &token)?;
        let r = c.clone().locate(req).await?.into_inner();
        Ok::<Option<String>, Box<dyn std::error::Error>>(r.grid.map(|g| g.code))
    };
    let n = points.len().min(20_000);
    let mut lat = Vec::with_capacity(n);
    let mut differ = 0usize;
    for (i, (x, y)) in points.iter().take(n).enumerate() {
        let s = Instant::now();
        let got = call(client.clone(), *y, *x, token.clone()).await?;
        lat.push(s.elapsed());
        differ += usize::from(got != answers[i]);
    }
    lat.sort();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (x, y) in points.iter().take(n) {
        let permit = sem.clone().acquire_owned().await?;
        let (c, token, (x, y)) = (client.clone(), token.clone(), (*x, *y));
        tasks.push(tokio::spawn(async move {
            let r = call(c, y, x, token).await.map_err(|e| e.to_string());
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await??;
    }
    let concurrent = t.elapsed();
    println!(
        "| grid service over gRPC (JWT checked per call), this process | {:.1} (store) + {:.2} (start-up load) | – | {:.2} | {:.2} | {:.0} sequential, {:.0} with 32 callers | {} of {n} as in memory |",
        stored.as_secs_f64(),
        start_up.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        n as f64 / lat.iter().map(Duration::as_secs_f64).sum::<f64>(),
        n as f64 / concurrent.as_secs_f64(),
        n - differ,
    );
    if differ > 0 {
        return Err(format!("{differ} gRPC answers differ from the in-memory ones").into());
    }
    Ok(())
}

fn wkt(m: &MultiPolygon<f64>) -> String {
    let polys: Vec<String> =
        m.0.iter()
            .map(|p| {
                let ring: Vec<String> = p
                    .exterior()
                    .0
                    .iter()
                    .map(|c| format!("{} {}", c.x, c.y))
                    .collect();
                format!("(({}))", ring.join(","))
            })
            .collect();
    format!("MULTIPOLYGON({})", polys.join(","))
}

#[tokio::main]
async fn main() -> Res<()> {
    let mut grids_n = 150_000usize;
    let mut points_n = 100_000usize;
    let mut postgis = true;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--grids" => grids_n = it.next().ok_or("--grids N")?.parse()?,
            "--points" => points_n = it.next().ok_or("--points N")?.parse()?,
            "--no-postgis" => postgis = false,
            _ => {}
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let points: Vec<(f64, f64)> = (0..points_n)
        .map(|_| (LON0 + SPAN * rng.unit(), LAT0 + SPAN * rng.unit()))
        .collect();
    // Memory: the process's resident set before the grids exist and once
    // they are indexed (polygons as loaded plus the tree).
    let before = rss_bytes();
    let grids = generate(grids_n, &mut rng);
    let vertices: usize = grids
        .iter()
        .map(|g| g.shape.0[0].exterior().0.len() - 1)
        .sum();
    println!(
        "machine: {} cores; {grids_n} grids ({:.1} vertices on average), {points_n} points",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        vertices as f64 / grids_n as f64
    );

    let t = Instant::now();
    let index = GridIndex::build(grids);
    let build = t.elapsed();
    let after = rss_bytes();
    let wkts: Vec<String> = if postgis {
        index.grids().iter().map(|g| wkt(&g.shape)).collect()
    } else {
        Vec::new()
    };
    let mut lat = Vec::with_capacity(points.len());
    let mut answers: Vec<Option<String>> = Vec::with_capacity(points.len());
    let t = Instant::now();
    for (x, y) in &points {
        let s = Instant::now();
        let hit = index.locate(*x, *y).basic.map(|g| g.code.clone());
        lat.push(s.elapsed());
        answers.push(hit);
    }
    let total = t.elapsed();
    lat.sort();
    let found = answers.iter().filter(|a| a.is_some()).count();
    println!();
    println!("| engine | build s | memory MiB | p50 µs | p99 µs | lookups/s | points in a grid |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| in-memory R-tree + point-in-polygon | {:.2} | {:.0} (resident; coordinates + tree entries alone {:.0}) | {:.2} | {:.2} | {:.0} | {found} |",
        build.as_secs_f64(),
        after.saturating_sub(before) as f64 / 1048576.0,
        index.coordinate_bytes() as f64 / 1048576.0,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        points.len() as f64 / total.as_secs_f64(),
    );
    grpc(&index, &points, &answers).await?;
    if !postgis {
        return Ok(());
    }

    let db = jiesu_testkit::TestDb::new::<NoTables>("grid_bench").await;
    let conn = db.connect().await;
    conn.execute_unprepared("CREATE EXTENSION IF NOT EXISTS postgis")
        .await?;
    conn.execute_unprepared(
        "CREATE TABLE grids (code TEXT PRIMARY KEY, geom geometry(MultiPolygon, 4326) NOT NULL)",
    )
    .await?;
    let t = Instant::now();
    for (chunk_no, chunk) in wkts.chunks(2000).enumerate() {
        let codes: Vec<String> = (0..chunk.len())
            .map(|j| format!("G{}", chunk_no * 2000 + j))
            .collect();
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO grids SELECT c, ST_GeomFromText(w, 4326) FROM unnest($1::text[], $2::text[]) AS t(c, w)",
            [codes.into(), chunk.to_vec().into()],
        ))
        .await?;
    }
    let load = t.elapsed();
    let t = Instant::now();
    conn.execute_unprepared("CREATE INDEX grids_geom ON grids USING gist (geom); ANALYZE grids")
        .await?;
    let gist = t.elapsed();
    let size: i64 = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_total_relation_size('grids')".to_owned(),
        ))
        .await?
        .ok_or("no size")?
        .try_get_by_index(0)?;
    let mut lat = Vec::with_capacity(points.len());
    let (mut mismatches, mut found_pg) = (0usize, 0usize);
    let t = Instant::now();
    for ((x, y), ours) in points.iter().zip(&answers) {
        let s = Instant::now();
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT code FROM grids WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) LIMIT 1",
                [(*x).into(), (*y).into()],
            ))
            .await?;
        lat.push(s.elapsed());
        let theirs: Option<String> = row.map(|r| r.try_get_by_index(0)).transpose()?;
        found_pg += usize::from(theirs.is_some());
        if &theirs != ours {
            mismatches += 1;
        }
    }
    let total_pg = t.elapsed();
    lat.sort();
    println!(
        "| PostGIS ST_Contains + GiST, one connection | {:.2} (load) + {:.2} (index) | {:.0} (table + index on disk) | {:.2} | {:.2} | {:.0} | {} |",
        load.as_secs_f64(),
        gist.as_secs_f64(),
        size as f64 / 1048576.0,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        points.len() as f64 / total_pg.as_secs_f64(),
        found_pg,
    );
    println!();
    println!(
        "answers differing between the two: {mismatches} of {}; in-memory lookups/s ÷ PostGIS lookups/s = {:.0}",
        points.len(),
        total_pg.as_secs_f64() / total.as_secs_f64()
    );
    if mismatches > 0 {
        return Err(format!("{mismatches} points answered differently").into());
    }
    Ok(())
}
