//! A province-sized layer streamed into the grid service and back out.
//!
//! ```text
//! cargo bench -p jiesu-grid --bench import -- [--grids 150000] [--chunk 65536]
//! ```
//!
//! Generates `--grids` polygons of 8 to 16 vertices (the locate bench's
//! generator), writes them as one GeoJSON FeatureCollection, starts a grid
//! target in this process on a fresh database, and streams the text through
//! `StreamLayer` in `--chunk`-byte pieces with a tenant admin's token, while
//! a second client polls `GetImport` for the progress an admin would see.
//! Reports the wall time of each phase, throughput, how many progress
//! readings moved, and the growth of the process's resident memory during
//! the import (client and server share the process; the text itself was
//! allocated before the baseline). Then streams the layer back out with
//! `StreamExport` and checks that every grid came back, and times a second
//! replica starting on the same database (loading and indexing the rows).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jiesu_proto::grid::{
    ExportLayerRequest, GetImportRequest, LayerChunk, grid_service_client::GridServiceClient,
};

mod common;

use common::{Rng, generate, geojson, rss_bytes};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn authed<T>(token: &str, msg: T) -> Res<tonic::Request<T>> {
    let mut r = tonic::Request::new(msg);
    jiesu_auth::bearer_metadata(&mut r, token)?;
    Ok(r)
}

#[tokio::main]
async fn main() -> Res<()> {
    let mut grids_n = 150_000usize;
    let mut chunk = 64 * 1024usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--grids" => grids_n = it.next().ok_or("--grids N")?.parse()?,
            "--chunk" => chunk = it.next().ok_or("--chunk BYTES")?.parse()?,
            _ => {}
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let grids = generate(grids_n, &mut rng);
    let mut text = String::from(r#"{"type":"FeatureCollection","features":["#);
    for (i, g) in grids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#"{{"type":"Feature","properties":{{"code":"{}","name":"第{}网格","kind":"basic","community_code":"370202006001"}},"geometry":{}}}"#,
            g.code,
            i + 1,
            geojson(&g.shape)
        ));
    }
    text.push_str("]}");
    drop(grids);
    let text = Arc::new(text.into_bytes());
    println!(
        "layer: {grids_n} grids, {:.1} MiB of GeoJSON, sent in {} KiB chunks",
        text.len() as f64 / (1 << 20) as f64,
        chunk / 1024
    );

    let db = jiesu_testkit::TestDb::new::<jiesu_grid::Migrations>("grid").await;
    let kit = jiesu_testkit::TestEnv::new().await;
    let keys = &kit.keys;
    let running = kit.spawn_on::<jiesu_grid::GridTarget>(&db, |_| {}).await;
    let url = running.url();
    let client = GridServiceClient::connect(url.clone())
        .await?
        .max_decoding_message_size(256 << 20);
    let admin = keys.token("370202", &[jiesu_auth::Role::TenantAdmin], "bench-admin");

    // Resident memory, sampled every 20 ms while the import runs.
    let baseline = rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let running_flag = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, flag) = (peak.clone(), running_flag.clone());
        tokio::spawn(async move {
            while flag.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // What an admin watching the import sees.
    let id = uuid::Uuid::new_v4().to_string();
    let watcher = {
        let (mut c, token, id, flag) = (
            client.clone(),
            admin.clone(),
            id.clone(),
            running_flag.clone(),
        );
        tokio::spawn(async move {
            let mut seen: Vec<(f64, u32, String)> = Vec::new();
            let t = Instant::now();
            while flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Ok(req) = authed(
                    &token,
                    GetImportRequest {
                        import_id: id.clone(),
                    },
                ) else {
                    continue;
                };
                if let Ok(r) = c.get_import(req).await {
                    let r = r.into_inner();
                    seen.push((t.elapsed().as_secs_f64(), r.features_read, r.status));
                }
            }
            seen
        })
    };

    let t = Instant::now();
    let first = LayerChunk {
        import_id: id.clone(),
        total_bytes: text.len() as u64,
        data: Vec::new(),
    };
    let body = text.clone();
    let chunks = tokio_stream::iter(std::iter::once(first).chain(
        (0..body.len().div_ceil(chunk)).map(move |i| LayerChunk {
            data: body[i * chunk..((i + 1) * chunk).min(body.len())].to_vec(),
            ..Default::default()
        }),
    ));
    let job = client
        .clone()
        .stream_layer(authed(&admin, chunks)?)
        .await?
        .into_inner();
    let import = t.elapsed();
    running_flag.store(false, Ordering::Relaxed);
    sampler.await?;
    let readings = watcher.await?;
    if job.status != "done" || job.created as usize != grids_n {
        return Err(format!(
            "import ended {} with {} created: {:?}",
            job.status, job.created, job.problems
        )
        .into());
    }
    let peak = peak.load(Ordering::Relaxed);
    let moving: Vec<&(f64, u32, String)> = readings
        .iter()
        .filter(|(_, n, s)| *n > 0 && s == "receiving")
        .collect();
    println!(
        "import: {:.1} s ({:.0} grids/s, {:.1} MiB/s); resident memory +{:.0} MiB at peak; {} progress readings while receiving, first {:?}, last {:?}",
        import.as_secs_f64(),
        grids_n as f64 / import.as_secs_f64(),
        text.len() as f64 / (1 << 20) as f64 / import.as_secs_f64(),
        peak.saturating_sub(baseline) as f64 / (1 << 20) as f64,
        moving.len(),
        moving.first().map(|r| (r.0, r.1)),
        moving.last().map(|r| (r.0, r.1)),
    );

    let t = Instant::now();
    let mut stream = client
        .clone()
        .stream_export(authed(&admin, ExportLayerRequest::default())?)
        .await?
        .into_inner();
    let (mut bytes, mut parts) = (0usize, 0usize);
    let mut out = Vec::with_capacity(text.len());
    while let Some(c) = stream.message().await? {
        bytes += c.data.len();
        parts += 1;
        out.extend_from_slice(&c.data);
    }
    let export = t.elapsed();
    let back: serde_json::Value = serde_json::from_slice(&out)?;
    let n = back["features"].as_array().map_or(0, Vec::len);
    println!(
        "export: {:.1} s, {:.1} MiB in {parts} chunks, {n} grids back",
        export.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64
    );
    if n != grids_n {
        return Err(format!("{n} grids exported, {grids_n} imported").into());
    }
    drop((out, back));

    // A replica starting on this database builds its index from the rows.
    let before = rss_bytes();
    let t = Instant::now();
    let restarted = kit.spawn_on::<jiesu_grid::GridTarget>(&db, |_| {}).await;
    println!(
        "start-up of a second replica: {:.1} s to load and index {grids_n} grids; resident memory +{:.0} MiB",
        t.elapsed().as_secs_f64(),
        rss_bytes().saturating_sub(before) as f64 / (1 << 20) as f64
    );
    drop(restarted);
    Ok(())
}
