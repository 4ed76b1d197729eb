//! Changing the shape of the layer: splitting and merging grids (their
//! history kept), pairing professional grids with basic grids, and the
//! building registry (门牌) that locates a request without coordinates.

use std::collections::HashSet;

use chrono::Utc;
use geo::{Contains, Point};
use jiesu_auth::{Principal, Role};
use jiesu_proto::{
    grid::{
        BuildingsCsv, GetGridRequest, GridChange, GridDetail, GridMerged, GridRef, GridSplit,
        GridVersion, ImportBuildingsResponse, ImportPairsResponse, MergeGridsRequest, PairsCsv,
        SplitGridRequest,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use tonic::Status;

use crate::{
    ctx::{Ctx, count, db_error, refuse},
    domain::layer::{Grid, Kind},
    history::{self, Change},
    store::{self, stmt},
};

/// Moves what hangs on retired grids to their successors: workers and
/// pairs go to every successor; households to the successor holding their
/// building (else the first); key persons follow their household (else the
/// first); open patrol and key-place tasks of retired grids are dropped
/// (the next generation creates them for the new grids).
async fn rehome(
    txn: &DatabaseTransaction,
    tenant: &str,
    retired: &[String],
    successors: &[Grid],
) -> Result<(), DbErr> {
    let names: Vec<String> = successors.iter().map(|g| g.code.clone()).collect();
    let Some(first) = names.first().cloned() else {
        return Ok(());
    };
    let (t, r) = (tenant.to_owned(), retired.to_vec());
    txn.execute_raw(stmt(
        "INSERT INTO assignments (tenant, worker_id, grid_code) \
         SELECT DISTINCT a.tenant, a.worker_id, s FROM assignments a, unnest($3::text[]) s \
         WHERE a.tenant = $1 AND a.grid_code = ANY($2) ON CONFLICT DO NOTHING",
        vec![t.clone().into(), r.clone().into(), names.clone().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO grid_pairs (tenant, professional_code, basic_code) \
         SELECT DISTINCT p.tenant, p.professional_code, s FROM grid_pairs p, unnest($3::text[]) s \
         WHERE p.tenant = $1 AND p.basic_code = ANY($2) ON CONFLICT DO NOTHING",
        vec![t.clone().into(), r.clone().into(), names.clone().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO grid_pairs (tenant, professional_code, basic_code) \
         SELECT DISTINCT p.tenant, s, p.basic_code FROM grid_pairs p, unnest($3::text[]) s \
         WHERE p.tenant = $1 AND p.professional_code = ANY($2) ON CONFLICT DO NOTHING",
        vec![t.clone().into(), r.clone().into(), names.clone().into()],
    ))
    .await?;
    // A code kept by a successor (a merge into one of its grids, a part
    // keeping the whole's code) keeps what it had and what it was given.
    let gone: Vec<String> = retired
        .iter()
        .filter(|c| !names.contains(c))
        .cloned()
        .collect();
    for sql in [
        "DELETE FROM assignments WHERE tenant = $1 AND grid_code = ANY($2)",
        "DELETE FROM grid_pairs WHERE tenant = $1 AND (basic_code = ANY($2) OR professional_code = ANY($2))",
        "DELETE FROM duty_tasks WHERE tenant = $1 AND done_at IS NULL \
           AND ((grid_code = ANY($2) AND target_kind IN ('patrol', 'key_place')) \
             OR (target_kind = 'key_place' AND target_id = ANY($2)))",
    ] {
        txn.execute_raw(stmt(sql, vec![t.clone().into(), gone.clone().into()]))
            .await?;
    }
    // Matters still open in a retired grid are the successor's to settle.
    txn.execute_raw(stmt(
        "UPDATE grid_events SET grid_code = $3 WHERE tenant = $1 AND grid_code = ANY($2) \
           AND status = 'reported'",
        vec![t.clone().into(), gone.clone().into(), first.clone().into()],
    ))
    .await?;
    // Households by their building's point.
    let rows = txn
        .query_all_raw(stmt(
            "SELECT h.id, b.lat, b.lon FROM households h \
             LEFT JOIN buildings b ON b.tenant = h.tenant AND b.code = h.building_code \
             WHERE h.tenant = $1 AND h.grid_code = ANY($2)",
            vec![t.clone().into(), r.clone().into()],
        ))
        .await?;
    for row in rows {
        let id: uuid::Uuid = row.try_get("", "id")?;
        let lat: Option<f64> = row.try_get("", "lat")?;
        let lon: Option<f64> = row.try_get("", "lon")?;
        let to = match (lat, lon) {
            (Some(lat), Some(lon)) => successors
                .iter()
                .find(|g| g.shape.contains(&Point::new(lon, lat)))
                .map_or(first.clone(), |g| g.code.clone()),
            _ => first.clone(),
        };
        txn.execute_raw(stmt(
            "UPDATE households SET grid_code = $3 WHERE tenant = $1 AND id = $2",
            vec![t.clone().into(), id.into(), to.into()],
        ))
        .await?;
    }
    txn.execute_raw(stmt(
        "UPDATE key_persons k SET grid_code = COALESCE( \
           (SELECT h.grid_code FROM households h WHERE h.tenant = k.tenant AND h.id = k.household_id), $3) \
         WHERE k.tenant = $1 AND k.grid_code = ANY($2)",
        vec![t.clone().into(), r.clone().into(), first.clone().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "UPDATE duty_tasks d SET grid_code = COALESCE( \
           (SELECT h.grid_code FROM households h WHERE h.tenant = d.tenant AND h.id::text = d.target_id), \
           (SELECT k.grid_code FROM key_persons k WHERE k.tenant = d.tenant AND k.id::text = d.target_id), $3) \
         WHERE d.tenant = $1 AND d.grid_code = ANY($2) AND d.done_at IS NULL \
           AND d.target_kind IN ('household', 'key_person')",
        vec![t.into(), r.into(), first.into()],
    ))
    .await?;
    Ok(())
}

impl Ctx {
    pub async fn get_grid(
        &self,
        who: &Principal,
        req: GetGridRequest,
    ) -> Result<GridDetail, Status> {
        who.require_any(&crate::api::LOCATORS)?;
        let tenant = who.tenant.code();
        let code = req.code.trim();
        let versions = history::versions(&self.db, tenant, code)
            .await
            .map_err(db_error)?;
        let Some(last) = versions.last() else {
            return Err(status::not_found("grid"));
        };
        let current = self.grid(tenant, code).ok();
        let (kind, community) = match &current {
            Some(g) => (g.kind.as_str().to_owned(), g.community.clone()),
            None => {
                let r = self
                    .db
                    .query_one_raw(stmt(
                        "SELECT kind, community_code FROM grid_history WHERE tenant = $1 AND code = $2 \
                         ORDER BY version DESC LIMIT 1",
                        vec![tenant.into(), code.into()],
                    ))
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| status::not_found("grid"))?;
                (
                    r.try_get("", "kind").map_err(db_error)?,
                    r.try_get("", "community_code").map_err(db_error)?,
                )
            }
        };
        let paired = self
            .db
            .query_all_raw(stmt(
                "SELECT basic_code AS other FROM grid_pairs WHERE tenant = $1 AND professional_code = $2 \
                 UNION SELECT professional_code FROM grid_pairs WHERE tenant = $1 AND basic_code = $2 \
                 ORDER BY 1",
                vec![tenant.into(), code.into()],
            ))
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|r| r.try_get("", "other"))
            .collect::<Result<Vec<String>, _>>()
            .map_err(db_error)?;
        let staff = if current.is_some() {
            self.staff(tenant, code).await?
        } else {
            Vec::new()
        };
        Ok(GridDetail {
            grid: Some(GridRef {
                code: code.to_owned(),
                name: last.name.clone(),
                kind,
            }),
            community_code: community,
            geometry: if current.is_some() {
                last.geometry.clone()
            } else {
                String::new()
            },
            paired,
            staff,
            history: versions
                .into_iter()
                .map(|v| GridVersion {
                    version: v.version,
                    name: v.name,
                    valid_from: Some(to_timestamp(v.valid_from)),
                    valid_to: v.valid_to.map(to_timestamp),
                    cause: v.cause,
                    predecessors: v.predecessors,
                    ended_by: v.ended_by.unwrap_or_default(),
                    successors: v.successors,
                    geometry: v.geometry,
                })
                .collect(),
        })
    }

    /// Ends `retired` and starts `created` in one transaction with the
    /// layer version moved on; then this replica's index is rebuilt.
    async fn reshape(
        &self,
        tenant: &str,
        retired: &[String],
        created: &[(Grid, String)],
        event: Reshaped,
        checked_at: Option<i64>,
    ) -> Result<GridChange, Status> {
        // How the old versions end and the new ones begin.
        let (ended_by, cause) = match event {
            Reshaped::Split(_) => ("split", "split"),
            Reshaped::Merged(_) => ("merged", "merge"),
        };
        let successors: Vec<String> = created.iter().map(|(g, _)| g.code.clone()).collect();
        let txn = self.db.begin().await.map_err(db_error)?;
        // The checks ran against this replica's index: they hold only if
        // the layer is still the version it was built from. The lock also
        // makes reshapes and imports of one tenant wait for each other.
        let current = txn
            .query_one_raw(stmt(
                "SELECT version FROM layer_versions WHERE tenant = $1 FOR UPDATE",
                vec![tenant.into()],
            ))
            .await
            .map_err(db_error)?
            .map(|r| r.try_get::<i64>("", "version"))
            .transpose()
            .map_err(db_error)?;
        if current != checked_at {
            drop(txn);
            self.layers
                .reload(&self.db, tenant)
                .await
                .map_err(db_error)?;
            return Err(status::coded(
                tonic::Code::Aborted,
                "layer_changed",
                "the grids changed meanwhile (another import, split or merge); check and send it again",
                None,
            ));
        }
        for code in retired {
            history::end(&txn, tenant, code, ended_by, &successors)
                .await
                .map_err(db_error)?;
            txn.execute_raw(stmt(
                "DELETE FROM grids WHERE tenant = $1 AND code = $2",
                vec![tenant.into(), code.clone().into()],
            ))
            .await
            .map_err(db_error)?;
        }
        for (g, geometry) in created {
            let version = history::start(
                &txn,
                tenant,
                g,
                geometry,
                &Change {
                    cause,
                    predecessors: retired,
                },
            )
            .await
            .map_err(db_error)?;
            history::put_current(&txn, tenant, g, geometry, version)
                .await
                .map_err(db_error)?;
        }
        let grids: Vec<Grid> = created.iter().map(|(g, _)| g.clone()).collect();
        rehome(&txn, tenant, retired, &grids)
            .await
            .map_err(db_error)?;
        let version = store::bump_layer(&txn, tenant).await.map_err(db_error)?;
        match event {
            Reshaped::Split(mut e) => {
                e.version = version;
                self.outbox.enqueue(&txn, &e).await
            }
            Reshaped::Merged(mut e) => {
                e.version = version;
                self.outbox.enqueue(&txn, &e).await
            }
        }
        .map_err(db_error)?;
        let at = txn
            .query_one_raw(stmt("SELECT now() AS at", vec![]))
            .await
            .map_err(db_error)?
            .map(|r| r.try_get::<chrono::DateTime<Utc>>("", "at"))
            .transpose()
            .map_err(db_error)?
            .unwrap_or_else(Utc::now);
        txn.commit().await.map_err(db_error)?;
        self.outbox.wake();
        self.layers
            .reload(&self.db, tenant)
            .await
            .map_err(db_error)?;
        Ok(GridChange {
            ended: retired.to_vec(),
            created: successors,
            at: Some(to_timestamp(at)),
            version,
        })
    }

    pub async fn split(
        &self,
        who: &Principal,
        req: SplitGridRequest,
    ) -> Result<GridChange, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code().to_owned();
        // Taken before any check reads the index: if the index moves on
        // meanwhile, the transaction sees another version and refuses.
        let checked_at = self.layers.version(&tenant);
        let whole = self.grid(&tenant, req.code.trim())?;
        let parts = history::read_parts(&whole, &req.parts_geojson)
            .map_err(|p| refuse("parts_geojson", &p))?;
        let grids: Vec<Grid> = parts.iter().map(|(g, _)| g.clone()).collect();
        let mut problems = history::check_split(&whole, &grids);
        for g in &grids {
            if g.code != whole.code && self.grid(&tenant, &g.code).is_ok() {
                problems.push(format!("part code {} is already a grid", g.code));
            }
        }
        if !problems.is_empty() {
            return Err(refuse("parts_geojson", &problems));
        }
        let event = Reshaped::Split(GridSplit {
            tenant: tenant.clone(),
            code: whole.code.clone(),
            parts: grids.iter().map(|g| g.code.clone()).collect(),
            version: 0,
            at: Some(to_timestamp(Utc::now())),
        });
        let change = self
            .reshape(
                &tenant,
                std::slice::from_ref(&whole.code),
                &parts,
                event,
                checked_at,
            )
            .await?;
        tracing::info!(tenant = %tenant, grid = %whole.code, parts = change.created.len(), "grid split");
        Ok(change)
    }

    pub async fn merge(
        &self,
        who: &Principal,
        req: MergeGridsRequest,
    ) -> Result<GridChange, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code().to_owned();
        let checked_at = self.layers.version(&tenant);
        let mut sources = Vec::new();
        let mut seen = HashSet::new();
        for (i, code) in req.codes.iter().enumerate() {
            if !seen.insert(code.trim()) {
                return Err(status::invalid_field(
                    &format!("codes[{i}]"),
                    "appears twice",
                ));
            }
            sources.push(self.grid(&tenant, code.trim()).map_err(|_| {
                status::invalid_field(&format!("codes[{i}]"), format!("no grid {code}"))
            })?);
        }
        let code = req.code.trim();
        if code.is_empty() || code.len() > 64 {
            return Err(status::invalid_field(
                "code",
                "required, at most 64 characters",
            ));
        }
        if !seen.contains(code) && self.grid(&tenant, code).is_ok() {
            return Err(status::invalid_field(
                "code",
                format!("{code} is already a grid"),
            ));
        }
        let refs: Vec<&Grid> = sources.iter().collect();
        let shape = history::merged_shape(&refs).map_err(|p| refuse("codes", &p))?;
        let first = &sources[0];
        let merged = Grid {
            code: code.to_owned(),
            name: match req.name.trim() {
                "" => code.to_owned(),
                n => n.to_owned(),
            },
            kind: first.kind,
            community: first.community.clone(),
            shape,
        };
        let geometry = history::geometry_json(&merged.shape);
        let codes: Vec<String> = sources.iter().map(|g| g.code.clone()).collect();
        let event = Reshaped::Merged(GridMerged {
            tenant: tenant.clone(),
            sources: codes.clone(),
            code: code.to_owned(),
            version: 0,
            at: Some(to_timestamp(Utc::now())),
        });
        let change = self
            .reshape(&tenant, &codes, &[(merged, geometry)], event, checked_at)
            .await?;
        tracing::info!(tenant = %tenant, grid = %code, sources = codes.len(), "grids merged");
        Ok(change)
    }

    /// Checks an import's grids against the tenant (communities inside it,
    /// no overlapping basic grids with each other or the grids kept) and
    /// stores them in one transaction announcing `grids.changed`; returns
    /// (created, updated, total).
    pub async fn import_grids(
        &self,
        tenant: &str,
        pairs: &[(Grid, String)],
    ) -> Result<(u32, u32, u32), Status> {
        let expected = self.layers.version(tenant).unwrap_or(0);
        let outside: Vec<String> = pairs
            .iter()
            .filter(|(g, _)| !g.community.starts_with(tenant))
            .map(|(g, _)| {
                format!(
                    "{}: community {} is not in the tenant's region",
                    g.code, g.community
                )
            })
            .collect();
        if !outside.is_empty() {
            return Err(refuse("geojson", &outside));
        }
        // Overlaps with each other and with the tenant's other grids.
        let new_codes: HashSet<&str> = pairs.iter().map(|(g, _)| g.code.as_str()).collect();
        let existing = self.layers.get(tenant);
        let kept = existing
            .iter()
            .flat_map(|idx| idx.grids().iter())
            .filter(|g| !new_codes.contains(g.code.as_str()));
        let clashes: Vec<String> =
            crate::domain::layer::overlaps(kept.chain(pairs.iter().map(|(g, _)| g)))
                .into_iter()
                .filter(|(a, b)| new_codes.contains(a.as_str()) || new_codes.contains(b.as_str()))
                .map(|(a, b)| format!("basic grids {a} and {b} of one community overlap"))
                .collect();
        if !clashes.is_empty() {
            return Err(refuse("geojson", &clashes));
        }
        let done = match store::upsert(&self.db, tenant, pairs, Some(&self.outbox), Some(expected))
            .await
        {
            Ok(done) => done,
            Err(store::UpsertError::Stale) => {
                self.layers
                    .reload(&self.db, tenant)
                    .await
                    .map_err(db_error)?;
                return Err(status::coded(
                    tonic::Code::Aborted,
                    "layer_changed",
                    "the grids changed meanwhile (another import, split or merge); send the layer again",
                    None,
                ));
            }
            Err(store::UpsertError::Db(e)) => return Err(db_error(e)),
        };
        let (created, updated) = (count(done.created.len()), count(done.updated.len()));
        self.layers
            .reload(&self.db, tenant)
            .await
            .map_err(db_error)?;
        let total = store::count(&self.db, tenant).await.map_err(db_error)?;
        tracing::info!(tenant = %tenant, created, updated, total, "grid layer imported");
        Ok((created, updated, total))
    }

    pub async fn import_pairs(
        &self,
        who: &Principal,
        req: PairsCsv,
    ) -> Result<ImportPairsResponse, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code();
        let index = self.layers.get(tenant);
        let kind_of = |code: &str| index.as_ref().and_then(|i| i.get(code).map(|g| g.kind));
        let mut problems = Vec::new();
        let mut pairs = Vec::new();
        for (n, line) in csv_lines(&req.csv, "professional_code,basic_code", &mut problems) {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [p, b] = cols[..] else {
                problems.push(format!("line {n}: needs two columns"));
                continue;
            };
            if kind_of(p) != Some(Kind::Professional) {
                problems.push(format!("line {n}: {p} is not a professional grid"));
            }
            if kind_of(b) != Some(Kind::Basic) {
                problems.push(format!("line {n}: {b} is not a basic grid"));
            }
            pairs.push((p.to_owned(), b.to_owned()));
        }
        if !problems.is_empty() {
            return Err(refuse("csv", &problems));
        }
        store::replace_pairs(&self.db, tenant, &pairs)
            .await
            .map_err(db_error)?;
        Ok(ImportPairsResponse {
            pairs: count(pairs.len()),
        })
    }

    pub async fn import_buildings(
        &self,
        who: &Principal,
        req: BuildingsCsv,
    ) -> Result<ImportBuildingsResponse, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code();
        let mut problems = Vec::new();
        let mut rows: Vec<(String, String, f64, f64)> = Vec::new();
        for (n, line) in csv_lines(&req.csv, "code,address,lat,lon", &mut problems) {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [code, address, lat, lon] = cols[..] else {
                problems.push(format!("line {n}: needs four columns"));
                continue;
            };
            let (Ok(lat), Ok(lon)) = (lat.parse::<f64>(), lon.parse::<f64>()) else {
                problems.push(format!("line {n}: lat and lon must be numbers"));
                continue;
            };
            if code.is_empty()
                || address.is_empty()
                || !(-90.0..=90.0).contains(&lat)
                || !(-180.0..=180.0).contains(&lon)
            {
                problems.push(format!(
                    "line {n}: code and address required, lat/lon in range"
                ));
                continue;
            }
            rows.push((code.to_owned(), address.to_owned(), lat, lon));
        }
        if !problems.is_empty() {
            return Err(refuse("csv", &problems));
        }
        let index = self.layers.get(tenant);
        let outside: Vec<String> = rows
            .iter()
            .filter(|(_, _, lat, lon)| {
                index
                    .as_ref()
                    .and_then(|i| i.locate(*lon, *lat).basic.map(|_| ()))
                    .is_none()
            })
            .map(|r| r.0.clone())
            .collect();
        store::upsert_buildings(&self.db, tenant, &rows)
            .await
            .map_err(db_error)?;
        Ok(ImportBuildingsResponse {
            buildings: count(rows.len()),
            outside,
        })
    }

    /// The registry building an address names: the same address, else the
    /// longest registered address the text contains.
    pub async fn building_for(
        &self,
        tenant: &str,
        address: &str,
    ) -> Result<Option<(String, String, f64, f64)>, Status> {
        let norm = normalize_address(address);
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT code, address, lat, lon FROM buildings WHERE tenant = $1 \
                   AND strpos($2, address_norm) > 0 \
                 ORDER BY length(address_norm) DESC, code LIMIT 1",
                vec![tenant.into(), norm.into()],
            ))
            .await
            .map_err(db_error)?;
        row.map(|r| {
            Ok((
                r.try_get("", "code")?,
                r.try_get("", "address")?,
                r.try_get("", "lat")?,
                r.try_get("", "lon")?,
            ))
        })
        .transpose()
        .map_err(db_error)
    }
}

/// The fact a reshape announces (its layer version set inside).
enum Reshaped {
    Split(GridSplit),
    Merged(GridMerged),
}

/// Numbered data lines of a CSV after its header (checked).
fn csv_lines<'a>(csv: &'a str, header: &str, problems: &mut Vec<String>) -> Vec<(usize, &'a str)> {
    let mut lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, h)) if h.trim().trim_start_matches('\u{feff}') == header => {}
        _ => {
            problems.push(format!("line 1: the header must be {header}"));
            return Vec::new();
        }
    }
    lines.map(|(i, l)| (i + 1, l)).collect()
}

/// Spaces dropped, full-width digits and letters made ASCII: how two
/// spellings of one 门牌 compare.
pub fn normalize_address(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{ff10}'..='\u{ff5a}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '號' => '号',
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_without_spaces_or_full_width_digits() {
        assert_eq!(normalize_address("东海西路 １５号"), "东海西路15号");
        let mut p = Vec::new();
        assert_eq!(
            csv_lines("code,x\n1,2", "code,address,lat,lon", &mut p).len(),
            0
        );
        assert_eq!(p.len(), 1);
    }
}
