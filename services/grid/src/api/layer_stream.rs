//! Large layers as streams: an import read as its chunks arrive (parsed
//! on a blocking thread, its progress written for any replica to report),
//! and an export sent a page of rows per chunk.

use std::{
    io::Read,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use jiesu_auth::{Principal, Role};
use jiesu_common::{Text, tr};
use jiesu_proto::grid::{
    ExportChunk, ExportLayerRequest, GetImportRequest, LayerChunk, LayerImport,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use uuid::Uuid;

use super::layers::{export_kind, import_grids};
use crate::{
    ctx::Ctx,
    domain::stream::parse,
    error::{GridError, noun, parse_id},
    store::{self, imports},
};

/// Grids per exported chunk.
const EXPORT_PAGE: i64 = 2000;

/// How often the progress row is written while an import runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Reads the chunks a channel delivers, blocking (on a blocking thread).
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.pos);
                buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
    }
}

/// An import whose handler may yet be dropped mid-way (the caller went
/// away): then the progress writer stops and the import is marked failed.
struct Unfinished {
    ctx: Ctx,
    tenant: String,
    id: Uuid,
    done: CancellationToken,
    armed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.done.cancel();
        if self.armed {
            let (db, tenant, id) = (self.ctx.db.clone(), self.tenant.clone(), self.id);
            tokio::spawn(async move {
                let broke = Err(vec![tr!("上传中断", "the upload broke off")]);
                if let Err(e) = imports::finish(&db, &tenant, id, &broke).await {
                    tracing::warn!(import_id = %id, error = %e, "could not mark an abandoned import failed");
                }
            });
        }
    }
}

/// Writes an import's progress; a failure is only logged (the import
/// goes on, its outcome is written at the end).
async fn progress(ctx: &Ctx, tenant: &str, id: Uuid, at: (u64, u32), status: &str) {
    if let Err(e) = imports::progress(&ctx.db, tenant, id, at, status).await {
        tracing::warn!(error = %e, "could not record an import's progress");
    }
}

async fn finish(
    ctx: &Ctx,
    tenant: &str,
    id: Uuid,
    outcome: &Result<(u32, u32), Vec<Text>>,
) -> Result<LayerImport, GridError> {
    imports::finish(&ctx.db, tenant, id, outcome)
        .await?
        .ok_or(GridError::NotFound(noun::IMPORT))
}

pub async fn stream_layer(
    ctx: &Ctx,
    who: &Principal,
    mut stream: Streaming<LayerChunk>,
) -> Result<LayerImport, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code().to_owned();
    let first = stream
        .message()
        .await
        .map_err(GridError::Stream)?
        .ok_or_else(|| GridError::field("import_id", tr!("数据流为空", "the stream is empty")))?;
    let id = parse_id("import_id", &first.import_id)?;
    if first.total_bytes > ctx.max_stream_bytes {
        return Err(GridError::field(
            "total_bytes",
            tr!(
                "每次导入最多 {} 字节",
                "at most {} bytes per import",
                ctx.max_stream_bytes
            ),
        ));
    }
    if !imports::start(&ctx.db, &tenant, id, &who.sub, first.total_bytes).await? {
        return Err(GridError::ImportExists);
    }
    tracing::info!(tenant = %tenant, import_id = %id, total_bytes = first.total_bytes, "streamed layer import started");

    let seen = Arc::new(AtomicU32::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let parser = {
        let seen = seen.clone();
        let reader = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        tokio::task::spawn_blocking(move || parse(reader, &seen))
    };
    let done = CancellationToken::new();
    let mut unfinished = Unfinished {
        ctx: ctx.clone(),
        tenant: tenant.clone(),
        id,
        done: done.clone(),
        armed: true,
    };
    let reporter = {
        let (ctx, tenant, seen, bytes, done) = (
            ctx.clone(),
            tenant.clone(),
            seen.clone(),
            bytes.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = done.cancelled() => return,
                    () = tokio::time::sleep(PROGRESS_EVERY) => {}
                }
                let at = (bytes.load(Ordering::Relaxed), seen.load(Ordering::Relaxed));
                progress(&ctx, &tenant, id, at, "receiving").await;
            }
        })
    };

    // Feed the parser; an upload that breaks off or runs over the limit
    // fails the import (nothing is stored).
    let mut failure: Option<Text> = None;
    let mut next = Some(first.data);
    while let Some(data) = next.take() {
        let total = bytes.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
        if total > ctx.max_stream_bytes {
            failure = Some(tr!(
                "图层超过 {} 字节",
                "the layer is larger than {} bytes",
                ctx.max_stream_bytes
            ));
            break;
        }
        if tx.send(data).await.is_err() {
            // The parser stopped early: its error says why.
            break;
        }
        match stream.message().await {
            Ok(Some(chunk)) => next = Some(chunk.data),
            Ok(None) => {}
            Err(e) => {
                let why = e.message();
                failure = Some(tr!("上传中断：{why}", "the upload broke off: {why}"));
            }
        }
    }
    drop(tx);
    let parsed = parser.await.map_err(|e| {
        tracing::error!(error = %e, "layer parser panicked");
        GridError::Internal("the layer parser failed")
    })?;
    done.cancel();
    reporter.await.ok();
    let features = seen.load(Ordering::Relaxed);
    let at = (bytes.load(Ordering::Relaxed), features);
    progress(ctx, &tenant, id, at, "storing").await;
    let outcome = match (failure, parsed) {
        (Some(f), _) => Err(vec![f]),
        (None, Err(problems)) => Err(problems),
        (None, Ok(pairs)) => match import_grids(ctx, &tenant, &pairs).await {
            Ok((created, updated, _)) => Ok((created, updated)),
            // A refused layer is a failed import, its problem recorded.
            Err(e @ GridError::Field { .. }) => Err(vec![e.text()]),
            Err(e) => {
                // Internal faults read "internal error" (their text says
                // no more).
                let why = e.text();
                finish(ctx, &tenant, id, &Err(vec![why])).await?;
                unfinished.armed = false;
                return Err(e);
            }
        },
    };
    let job = finish(ctx, &tenant, id, &outcome).await?;
    unfinished.armed = false;
    tracing::info!(tenant = %tenant, import_id = %id, status = %job.status, features, created = job.created, updated = job.updated, "streamed layer import finished");
    Ok(job)
}

/// The tenant's grids as GeoJSON text, a page of rows per chunk.
pub fn stream_export(
    ctx: &Ctx,
    who: &Principal,
    req: &ExportLayerRequest,
) -> Result<ReceiverStream<Result<ExportChunk, Status>>, GridError> {
    // The filter is checked before the role, as this call always has.
    let kind = export_kind(&req.kind)?;
    who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::Dispatcher])?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (db, tenant) = (ctx.db.clone(), who.tenant.code().to_owned());
    tokio::spawn(async move {
        let mut after = String::new();
        let mut text = String::from(r#"{"type":"FeatureCollection","features":["#);
        let mut first = true;
        loop {
            let page = store::page(&db, Some(&tenant), kind, &after, EXPORT_PAGE).await;
            let rows = match page {
                Ok(rows) => rows,
                Err(e) => {
                    tx.send(Err(GridError::from(e).into())).await.ok();
                    return;
                }
            };
            for r in &rows {
                match store::feature(r) {
                    Ok(f) => {
                        if !first {
                            text.push(',');
                        }
                        first = false;
                        text.push_str(&f.to_string());
                    }
                    Err(e) => {
                        tx.send(Err(GridError::from(e).into())).await.ok();
                        return;
                    }
                }
            }
            let last = rows.len() < EXPORT_PAGE as usize;
            if last {
                text.push_str("]}");
            }
            let data = std::mem::take(&mut text).into_bytes();
            if tx.send(Ok(ExportChunk { data })).await.is_err() {
                return; // the caller went away
            }
            match rows.last() {
                Some(r) if !last => after.clone_from(&r.code),
                _ => return,
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

pub async fn get_import(
    ctx: &Ctx,
    who: &Principal,
    req: GetImportRequest,
) -> Result<LayerImport, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let id = parse_id("import_id", &req.import_id)?;
    imports::get(&ctx.db, who.tenant.code(), id)
        .await?
        .ok_or(GridError::NotFound(noun::IMPORT))
}
