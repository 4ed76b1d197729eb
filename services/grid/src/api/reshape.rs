//! Reshaping the layer: a grid with its history, splitting and merging
//! grids (their history kept), pairing professional grids with basic
//! grids, and the building registry (门牌).

use chrono::Utc;
use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_proto::{
    grid::{
        BuildingsCsv, GetGridRequest, GridChange, GridDetail, GridMerged, GridRef, GridSplit,
        GridVersion, ImportBuildingsResponse, ImportPairsResponse, MergeGridsRequest, PairsCsv,
        SplitGridRequest,
    },
    time::to_timestamp,
};

use super::{LOCATORS, layers::staff};
use crate::{
    ctx::{Ctx, count},
    domain::{
        layer::Grid,
        registry::{outside, read_buildings, read_pairs},
        reshape::{MergeRequest, check_split_in, geometry_json, plan_merge, read_parts},
    },
    error::{GridError, noun, refuse},
    store::{
        self, history, registry,
        reshape::{Reshape, Reshaped},
    },
};

pub async fn get_grid(
    ctx: &Ctx,
    who: &Principal,
    req: GetGridRequest,
) -> Result<GridDetail, GridError> {
    who.require_any(&LOCATORS)?;
    let tenant = who.tenant.code();
    let code = req.code.trim();
    let versions = history::versions(&ctx.db, tenant, code).await?;
    let Some(last) = versions.last() else {
        return Err(GridError::NotFound(noun::GRID));
    };
    let current = ctx.grid(tenant, code).ok();
    let (kind, community) = match &current {
        Some(g) => (g.kind.as_str().to_owned(), g.community.clone()),
        None => history::last_kind_and_community(&ctx.db, tenant, code)
            .await?
            .ok_or(GridError::NotFound(noun::GRID))?,
    };
    let paired = registry::paired(&ctx.db, tenant, code).await?;
    // A grid that no longer exists has neither staff nor a shape now.
    let (staff, geometry) = if current.is_some() {
        (staff(ctx, tenant, code).await?, last.geometry.clone())
    } else {
        (Vec::new(), String::new())
    };
    Ok(GridDetail {
        grid: Some(GridRef {
            code: code.to_owned(),
            name: last.name.clone(),
            kind,
        }),
        community_code: community,
        geometry,
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

/// Stores a reshape checked against the layer at `checked_at`, then
/// rebuilds this replica's index (others follow the layer version).
async fn reshape(ctx: &Ctx, tenant: &str, r: Reshape<'_>) -> Result<GridChange, GridError> {
    let (ended, created) = (
        r.retired.to_vec(),
        r.created.iter().map(|(g, _)| g.code.clone()).collect(),
    );
    let stored = store::reshape::reshape(&ctx.db, &ctx.outbox, tenant, r).await?;
    ctx.layers.reload(&ctx.db, tenant).await?;
    let Some(stored) = stored else {
        return Err(GridError::LayerChanged {
            resend: tr!("请检查后重新发送", "check and send it again"),
        });
    };
    Ok(GridChange {
        ended,
        created,
        at: Some(to_timestamp(stored.at)),
        version: stored.version,
    })
}

pub async fn split(
    ctx: &Ctx,
    who: &Principal,
    req: SplitGridRequest,
) -> Result<GridChange, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code();
    // Taken before any check reads the index: if the index moves on
    // meanwhile, the store sees another version and refuses.
    let checked_at = ctx.layers.version(tenant);
    let whole = ctx.grid(tenant, req.code.trim())?;
    let parts = read_parts(&whole, &req.parts_geojson).map_err(|p| refuse("parts_geojson", &p))?;
    let grids: Vec<Grid> = parts.iter().map(|(g, _)| g.clone()).collect();
    check_split_in(&whole, &grids, |code| ctx.grid(tenant, code).is_ok())?;
    let event = Reshaped::Split(GridSplit {
        tenant: tenant.to_owned(),
        code: whole.code.clone(),
        parts: grids.iter().map(|g| g.code.clone()).collect(),
        version: 0,
        at: Some(to_timestamp(Utc::now())),
    });
    let retired = std::slice::from_ref(&whole.code);
    let change = reshape(
        ctx,
        tenant,
        Reshape {
            retired,
            created: &parts,
            event,
            checked_at,
        },
    )
    .await?;
    tracing::info!(tenant = %tenant, grid = %whole.code, parts = change.created.len(), "grid split");
    Ok(change)
}

pub async fn merge(
    ctx: &Ctx,
    who: &Principal,
    req: MergeGridsRequest,
) -> Result<GridChange, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code();
    let checked_at = ctx.layers.version(tenant);
    let ask = MergeRequest {
        codes: &req.codes,
        code: &req.code,
        name: &req.name,
    };
    let (merged, codes) = plan_merge(&ask, |code| ctx.grid(tenant, code).ok())?;
    let code = merged.code.clone();
    let geometry = geometry_json(&merged.shape);
    let event = Reshaped::Merged(GridMerged {
        tenant: tenant.to_owned(),
        sources: codes.clone(),
        code: code.clone(),
        version: 0,
        at: Some(to_timestamp(Utc::now())),
    });
    let change = reshape(
        ctx,
        tenant,
        Reshape {
            retired: &codes,
            created: &[(merged, geometry)],
            event,
            checked_at,
        },
    )
    .await?;
    tracing::info!(tenant = %tenant, grid = %code, sources = codes.len(), "grids merged");
    Ok(change)
}

pub async fn import_pairs(
    ctx: &Ctx,
    who: &Principal,
    req: PairsCsv,
) -> Result<ImportPairsResponse, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code();
    let index = ctx.layers.get(tenant);
    let pairs = read_pairs(&req.csv, |code| {
        index.as_ref().and_then(|i| i.get(code).map(|g| g.kind))
    })?;
    store::replace_pairs(&ctx.db, tenant, &pairs).await?;
    Ok(ImportPairsResponse {
        pairs: count(pairs.len()),
    })
}

pub async fn import_buildings(
    ctx: &Ctx,
    who: &Principal,
    req: BuildingsCsv,
) -> Result<ImportBuildingsResponse, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code();
    let rows = read_buildings(&req.csv)?;
    let outside = outside(ctx.layers.get(tenant).as_deref(), &rows);
    store::upsert_buildings(&ctx.db, tenant, &rows).await?;
    Ok(ImportBuildingsResponse {
        buildings: count(rows.len()),
        outside,
    })
}
