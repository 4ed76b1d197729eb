//! A large layer streamed in with its progress visible meanwhile, and
//! streamed back out a page at a time.

use std::time::Duration;

use jiesu_auth::Role;
use jiesu_proto::grid::{
    ExportLayerRequest, GetImportRequest, LayerChunk, LayerImport, LocateRequest,
};
use jiesu_testkit::wait_until;
use serde_json::Value;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::helpers::{Grid, ZS, authed, layer, refusal, square};

/// A layer of `n` basic grids in rows of 50 (0.001° squares).
fn many(n: usize) -> String {
    let features: Vec<Value> = (0..n)
        .map(|i| {
            let (x0, y0) = (
                120.30 + (i % 50) as f64 * 0.001,
                36.04 + (i / 50) as f64 * 0.001,
            );
            square(
                &format!("S{i:05}"),
                "basic",
                ZS,
                x0,
                y0,
                x0 + 0.001,
                y0 + 0.001,
            )
        })
        .collect();
    layer(features)
}

/// Streams `text` as one import (the first chunk names it).
async fn stream(g: &Grid, id: &str, text: String) -> Result<LayerImport, tonic::Status> {
    let first = LayerChunk {
        import_id: id.into(),
        total_bytes: text.len() as u64,
        data: Vec::new(),
    };
    let chunks: Vec<LayerChunk> = std::iter::once(first)
        .chain(text.into_bytes().chunks(16 * 1024).map(|c| LayerChunk {
            data: c.to_vec(),
            ..Default::default()
        }))
        .collect();
    g.c()
        .stream_layer(authed(&g.admin(), tokio_stream::iter(chunks)))
        .await
        .map(tonic::Response::into_inner)
}

async fn job(g: &Grid, id: &str) -> Result<LayerImport, tonic::Status> {
    g.c()
        .get_import(authed(
            &g.admin(),
            GetImportRequest {
                import_id: id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_large_layer_streams_in_with_its_progress_visible() {
    let g = Grid::start().await;
    let admin = g.admin();
    let text = many(3000);
    let total = text.len() as u64;
    let half = text.len() / 2;
    let id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel::<LayerChunk>(64);
    let upload = {
        let mut c = g.c();
        let req = authed(&admin, ReceiverStream::new(rx));
        tokio::spawn(async move { c.stream_layer(req).await })
    };
    tx.send(LayerChunk {
        import_id: id.clone(),
        total_bytes: total,
        data: Vec::new(),
    })
    .await
    .unwrap();
    let send = |bytes: &[u8]| {
        let chunks: Vec<Vec<u8>> = bytes.chunks(16 * 1024).map(<[u8]>::to_vec).collect();
        let tx = tx.clone();
        async move {
            for data in chunks {
                tx.send(LayerChunk {
                    data,
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        }
    };
    send(&text.as_bytes()[..half]).await;
    // Half sent: the import is under way, its features counted as they come.
    let during = wait_until(Duration::from_secs(20), "progress", || async {
        job(&g, &id).await.ok().filter(|j| j.features_read > 100)
    })
    .await;
    assert_eq!(during.status, "receiving");
    assert_eq!(during.total_bytes, total);
    let progress = during.bytes_received as f64 / during.total_bytes as f64;
    assert!(progress > 0.2 && progress <= 0.5 + 1e-9, "{during:?}");
    assert!(during.features_read < 3000);
    send(&text.as_bytes()[half..]).await;
    drop(tx);
    let done = upload.await.unwrap().unwrap().into_inner();
    assert_eq!(
        (done.status.as_str(), done.created, done.features_read),
        ("done", 3000, 3000),
        "{done:?}"
    );
    assert_eq!(done.bytes_received, done.total_bytes);
    let gw = g.token(Role::GridWorker, "gw-1");
    let at = g
        .c()
        .locate(authed(
            &gw,
            LocateRequest {
                lat: 36.0405,
                lon: 120.3005,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at.grid.unwrap().code, "S00000");

    // The export streams back a page at a time: the same 3,000 grids.
    let mut chunks = g
        .c()
        .stream_export(authed(&admin, ExportLayerRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    let mut pages = 0;
    while let Some(chunk) = chunks.message().await.unwrap() {
        bytes.extend(chunk.data);
        pages += 1;
    }
    assert!(pages >= 2, "one page per 2,000 grids");
    let exported: Value = serde_json::from_slice(&bytes).unwrap();
    let features = exported["features"].as_array().unwrap();
    assert_eq!(features.len(), 3000);
    assert_eq!(features[2999]["properties"]["code"], "S02999");

    // The same id again, and a layer that breaks the rules: refused,
    // nothing stored.
    let (code, jiesu_code, field, _) =
        refusal(stream(&g, &id, many(1)).await.map(tonic::Response::new));
    assert_eq!(
        (code, jiesu_code.as_str(), field.as_deref()),
        (Code::AlreadyExists, "import_exists", Some("import_id"))
    );
    let overlapping = layer(vec![square(
        "X1", "basic", ZS, 120.3005, 36.0405, 120.3015, 36.0415,
    )]);
    let bad = uuid::Uuid::new_v4().to_string();
    let failed = stream(&g, &bad, overlapping).await.unwrap();
    assert_eq!(failed.status, "failed");
    assert!(failed.problems[0].contains("相互重叠"), "{failed:?}");
    assert!(failed.problems_en[0].contains("overlap"), "{failed:?}");
    assert_eq!(job(&g, &bad).await.unwrap().status, "failed");
    let cut = stream(
        &g,
        &uuid::Uuid::new_v4().to_string(),
        "{\"type\":\"FeatureCollection\",\"features\":[".into(),
    )
    .await
    .unwrap();
    assert_eq!(cut.status, "failed");
    assert!(
        cut.problems[0].starts_with("不是 GeoJSON FeatureCollection"),
        "{cut:?}"
    );
    assert!(
        cut.problems_en[0].starts_with("not a GeoJSON FeatureCollection"),
        "{cut:?}"
    );
    assert_eq!(g.db.count("SELECT count(*) FROM grids").await, 3000);
    let unknown = job(&g, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(refusal(unknown.map(tonic::Response::new)).0, Code::NotFound);
    let (code, _, field, _) = refusal(job(&g, "42").await.map(tonic::Response::new));
    assert_eq!(
        (code, field.as_deref()),
        (Code::InvalidArgument, Some("import_id"))
    );
}
