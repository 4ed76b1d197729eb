//! Large layers streamed in chunks: the bytes are parsed as they arrive,
//! one feature at a time (never the whole document as a JSON tree), and the
//! import's progress is kept in the database so that any replica can report
//! it while the upload runs.

use std::{
    io::Read,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_proto::{
    grid::{ExportChunk, GetImportRequest, LayerChunk, LayerImport},
    status,
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DbErr};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tonic::{Status, Streaming};
use uuid::Uuid;

use crate::{
    ctx::{Ctx, db_error, parse_id},
    domain::layer::{FeatureReader, Grid, MAX_FEATURES},
    store::{self, stmt},
};

/// Grids per exported chunk.
const EXPORT_PAGE: i64 = 2000;

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

/// What the parser gathers: each grid with its geometry text.
struct Gathered<'a> {
    reader: FeatureReader,
    grids: Vec<(Grid, String)>,
    seen: &'a AtomicU32,
    collection: bool,
}

impl Gathered<'_> {
    fn feature(&mut self, f: &Value) {
        let i = self.seen.fetch_add(1, Ordering::Relaxed) as usize;
        if i >= MAX_FEATURES {
            if i == MAX_FEATURES {
                self.reader
                    .errors
                    .push(format!("features: at most {MAX_FEATURES} per import"));
            }
            return;
        }
        if let Some(g) = self.reader.read(i, f) {
            self.grids.push((g, f["geometry"].to_string()));
        }
    }
}

struct Document<'a, 'b>(&'a mut Gathered<'b>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON FeatureCollection")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    let t: String = map.next_value()?;
                    self.0.collection = t == "FeatureCollection";
                }
                "features" => map.next_value_seed(Features(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Features<'a, 'b>(&'a mut Gathered<'b>);

impl<'de> DeserializeSeed<'de> for Features<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of features")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(f) = seq.next_element::<Value>()? {
            self.0.feature(&f);
        }
        Ok(())
    }
}

/// Parses a FeatureCollection from `input` feature by feature, counting
/// them in `seen`.
fn parse(input: impl Read, seen: &AtomicU32) -> Result<Vec<(Grid, String)>, Vec<String>> {
    let mut g = Gathered {
        reader: FeatureReader::default(),
        grids: Vec::new(),
        seen,
        collection: false,
    };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(input));
    if let Err(e) = Document(&mut g)
        .deserialize(&mut de)
        .and_then(|()| de.end())
    {
        return Err(vec![format!("not a GeoJSON FeatureCollection: {e}")]);
    }
    if !g.collection {
        return Err(vec!["type: must be FeatureCollection".into()]);
    }
    g.reader.finish(g.grids)
}

const COLUMNS: &str = "id, status, bytes_received, total_bytes, features_read, created, updated, \
    problems, started_at, finished_at";

fn import_of(r: &sea_orm::QueryResult) -> Result<LayerImport, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let started: DateTime<Utc> = r.try_get("", "started_at")?;
    let finished: Option<DateTime<Utc>> = r.try_get("", "finished_at")?;
    let n = |c: &str| -> Result<u64, DbErr> {
        Ok(u64::try_from(r.try_get::<i64>("", c)?).unwrap_or(0))
    };
    let k = |c: &str| -> Result<u32, DbErr> {
        Ok(u32::try_from(r.try_get::<i32>("", c)?).unwrap_or(0))
    };
    Ok(LayerImport {
        id: id.to_string(),
        status: r.try_get("", "status")?,
        bytes_received: n("bytes_received")?,
        total_bytes: n("total_bytes")?,
        features_read: k("features_read")?,
        created: k("created")?,
        updated: k("updated")?,
        problems: r.try_get("", "problems")?,
        started_at: Some(to_timestamp(started)),
        finished_at: finished.map(to_timestamp),
    })
}

/// An import whose handler may yet be dropped mid-way.
struct Unfinished {
    ctx: Ctx,
    tenant: String,
    id: Uuid,
    done: tokio_util::sync::CancellationToken,
    armed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.done.cancel();
        if self.armed {
            let (ctx, tenant, id) = (self.ctx.clone(), self.tenant.clone(), self.id);
            tokio::spawn(async move {
                let broke = Err(vec!["the upload broke off".to_owned()]);
                if let Err(e) = ctx.finish_import(&tenant, id, &broke).await {
                    tracing::warn!(import_id = %id, error = %e.message(), "could not mark an abandoned import failed");
                }
            });
        }
    }
}

/// How often the progress row is written while an import runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

impl Ctx {
    async fn progress(&self, tenant: &str, id: Uuid, bytes: u64, features: u32, status: &str) {
        let r = self
            .db
            .execute_raw(stmt(
                "UPDATE layer_imports SET bytes_received = $3, features_read = $4, status = $5 \
                 WHERE tenant = $1 AND id = $2 AND finished_at IS NULL",
                vec![
                    tenant.into(),
                    id.into(),
                    i64::try_from(bytes).unwrap_or(i64::MAX).into(),
                    i32::try_from(features).unwrap_or(i32::MAX).into(),
                    status.into(),
                ],
            ))
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not record an import's progress");
        }
    }

    async fn finish_import(
        &self,
        tenant: &str,
        id: Uuid,
        outcome: &Result<(u32, u32, u32), Vec<String>>,
    ) -> Result<LayerImport, Status> {
        let (status, created, updated, problems) = match outcome {
            Ok((c, u, _)) => ("done", *c, *u, Vec::new()),
            Err(p) => ("failed", 0, 0, p.iter().take(100).cloned().collect()),
        };
        let row = self
            .db
            .query_one_raw(stmt(
                &format!(
                    "UPDATE layer_imports SET status = $3, created = $4, updated = $5, \
                       problems = $6, finished_at = now() \
                     WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
                ),
                vec![
                    tenant.into(),
                    id.into(),
                    status.into(),
                    i32::try_from(created).unwrap_or(i32::MAX).into(),
                    i32::try_from(updated).unwrap_or(i32::MAX).into(),
                    problems.into(),
                ],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("import"))?;
        import_of(&row).map_err(db_error)
    }

    pub async fn stream_layer(
        &self,
        who: &Principal,
        mut stream: Streaming<LayerChunk>,
    ) -> Result<LayerImport, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code().to_owned();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| status::invalid_field("import_id", "the stream is empty"))?;
        let id = parse_id("import_id", &first.import_id)?;
        if first.total_bytes > self.max_stream_bytes {
            return Err(status::invalid_field(
                "total_bytes",
                format!("at most {} bytes per import", self.max_stream_bytes),
            ));
        }
        let started = self
            .db
            .execute_raw(stmt(
                "INSERT INTO layer_imports (tenant, id, started_by, status, total_bytes) \
                 VALUES ($1, $2, $3, 'receiving', $4) ON CONFLICT DO NOTHING",
                vec![
                    tenant.clone().into(),
                    id.into(),
                    who.sub.clone().into(),
                    i64::try_from(first.total_bytes).unwrap_or(0).into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        if started.rows_affected() == 0 {
            return Err(status::coded(
                tonic::Code::AlreadyExists,
                "import_exists",
                "import_id: an import with this id already ran; choose a new one",
                Some("import_id"),
            ));
        }
        tracing::info!(tenant = %tenant, import_id = %id, total_bytes = first.total_bytes, "streamed layer import started");

        let seen = Arc::new(AtomicU32::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        let parser = {
            let seen = seen.clone();
            tokio::task::spawn_blocking(move || {
                parse(
                    ChunkReader {
                        rx,
                        cur: Vec::new(),
                        pos: 0,
                    },
                    &seen,
                )
            })
        };
        let done = tokio_util::sync::CancellationToken::new();
        // If this handler is dropped (the caller went away), the progress
        // writer stops and the import is marked failed.
        let mut unfinished = Unfinished {
            ctx: self.clone(),
            tenant: tenant.clone(),
            id,
            done: done.clone(),
            armed: true,
        };
        let reporter = {
            let (ctx, tenant, seen, bytes, done) = (
                self.clone(),
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
                    ctx.progress(
                        &tenant,
                        id,
                        bytes.load(Ordering::Relaxed),
                        seen.load(Ordering::Relaxed),
                        "receiving",
                    )
                    .await;
                }
            })
        };

        // Feed the parser; an upload that breaks off or runs over the limit
        // fails the import (nothing is stored).
        let mut failure: Option<String> = None;
        let mut next = Some(first.data);
        while let Some(data) = next.take() {
            let total = bytes.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
            if total > self.max_stream_bytes {
                failure = Some(format!(
                    "the layer is larger than {} bytes",
                    self.max_stream_bytes
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
                    failure = Some(format!("the upload broke off: {}", e.message()));
                }
            }
        }
        drop(tx);
        let parsed = parser.await.map_err(|e| {
            tracing::error!(error = %e, "layer parser panicked");
            status::internal()
        })?;
        done.cancel();
        reporter.await.ok();
        let features = seen.load(Ordering::Relaxed);
        self.progress(
            &tenant,
            id,
            bytes.load(Ordering::Relaxed),
            features,
            "storing",
        )
        .await;
        let outcome = match (failure, parsed) {
            (Some(f), _) => Err(vec![f]),
            (None, Err(problems)) => Err(problems),
            (None, Ok(pairs)) => match self.import_grids(&tenant, &pairs).await {
                Ok(done) => Ok(done),
                Err(s) if s.code() == tonic::Code::InvalidArgument => {
                    Err(vec![s.message().to_owned()])
                }
                Err(s) => {
                    let why = if s.code() == tonic::Code::Internal {
                        "internal error".to_owned()
                    } else {
                        s.message().to_owned()
                    };
                    self.finish_import(&tenant, id, &Err(vec![why])).await?;
                    unfinished.armed = false;
                    return Err(s);
                }
            },
        };
        let job = self.finish_import(&tenant, id, &outcome).await?;
        unfinished.armed = false;
        tracing::info!(tenant = %tenant, import_id = %id, status = %job.status, features, created = job.created, updated = job.updated, "streamed layer import finished");
        Ok(job)
    }

    /// The tenant's grids as GeoJSON text, a page of rows per chunk.
    pub fn stream_export(
        &self,
        who: &Principal,
        kind: Option<&'static str>,
    ) -> Result<tokio_stream::wrappers::ReceiverStream<Result<ExportChunk, Status>>, Status> {
        who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::Dispatcher])?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (db, tenant) = (self.db.clone(), who.tenant.code().to_owned());
        tokio::spawn(async move {
            let mut after = String::new();
            let mut text = String::from(r#"{"type":"FeatureCollection","features":["#);
            let mut first = true;
            loop {
                let rows = match store::page(&db, Some(&tenant), kind, &after, EXPORT_PAGE).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tx.send(Err(db_error(e))).await.ok();
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
                            tx.send(Err(db_error(e))).await.ok();
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
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    pub async fn get_import(
        &self,
        who: &Principal,
        req: GetImportRequest,
    ) -> Result<LayerImport, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let id = parse_id("import_id", &req.import_id)?;
        let row = self
            .db
            .query_one_raw(stmt(
                &format!("SELECT {COLUMNS} FROM layer_imports WHERE tenant = $1 AND id = $2"),
                vec![who.tenant.code().into(), id.into()],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("import"))?;
        import_of(&row).map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layer::tests::{layer, square};

    /// The text split into tiny chunks, as a slow upload delivers it.
    fn chunked(text: &str, size: usize) -> ChunkReader {
        let (tx, rx) = tokio::sync::mpsc::channel(text.len() / size + 2);
        for c in text.as_bytes().chunks(size) {
            tx.try_send(c.to_vec()).ok();
        }
        ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }

    #[test]
    fn a_layer_in_small_chunks_reads_like_a_whole_one() {
        let l = layer(vec![
            square("G1", "basic", 120.30, 36.04, 120.31, 36.05),
            square("G2", "basic", 120.31, 36.04, 120.32, 36.05),
        ]);
        let seen = AtomicU32::new(0);
        let grids = parse(chunked(&l, 7), &seen).unwrap_or_default();
        assert_eq!(grids.len(), 2);
        assert_eq!(seen.load(Ordering::Relaxed), 2);
        assert_eq!(grids[1].0.code, "G2");
        let whole = crate::domain::layer::read_with_geometry(&l).unwrap_or_default();
        assert_eq!(grids[0].1, whole[0].1, "the same geometry text is kept");

        let mut bad = square("G3", "basic", 0.0, 0.0, 1.0, 1.0);
        bad["geometry"]["coordinates"][0] = serde_json::json!([[0, 0], [1, 0], [1, 1], [0, 1]]);
        let errors = parse(chunked(&layer(vec![bad]), 5), &seen)
            .err()
            .unwrap_or_default();
        assert!(errors[0].contains("not closed"), "{errors:?}");
        let errors = parse(
            chunked(r#"{"type":"FeatureCollection","features":[{"#, 3),
            &seen,
        )
        .err()
        .unwrap_or_default();
        assert!(
            errors[0].starts_with("not a GeoJSON FeatureCollection"),
            "{errors:?}"
        );
        let errors = parse(chunked(r#"{"type":"Feature","features":[]}"#, 3), &seen)
            .err()
            .unwrap_or_default();
        assert_eq!(errors, vec!["type: must be FeatureCollection".to_owned()]);
    }
}
