//! Layers: importing and exporting a tenant's grids in one message, the
//! division tree, and locating a point (or a registry address) among the
//! grids, now or as of a moment.

use jiesu_auth::{Principal, Role};
use jiesu_common::{geo::check_point, tr};
use jiesu_proto::{
    grid::{
        ExportLayerRequest, ExportLayerResponse, GridRef, ImportLayerRequest, ImportLayerResponse,
        ImportRegionsResponse, ListRegionsRequest, ListRegionsResponse, LocateForRequest,
        LocateRequest, LocateResponse, RegionsCsv, StaffMember,
    },
    time::from_timestamp,
};

use super::LOCATORS;
use crate::{
    ctx::{Ctx, count},
    domain::{
        index::GridIndex,
        layer::{self, Grid, Kind},
        regions,
        registry::{listing_prefix, refuse_regions},
        reshape::check_import,
    },
    error::{GridError, refuse},
    store::{self, Layers, history, registry, workers},
};

pub async fn import_layer(
    ctx: &Ctx,
    who: &Principal,
    req: ImportLayerRequest,
) -> Result<ImportLayerResponse, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let pairs = layer::read_with_geometry(&req.geojson).map_err(|p| refuse("geojson", &p))?;
    let (created, updated, total) = import_grids(ctx, who.tenant.code(), &pairs).await?;
    Ok(ImportLayerResponse {
        created,
        updated,
        total,
    })
}

/// Checks an import's grids against the tenant and stores them in one
/// transaction announcing `grids.changed`; returns (created, updated,
/// total).
pub(super) async fn import_grids(
    ctx: &Ctx,
    tenant: &str,
    pairs: &[(Grid, String)],
) -> Result<(u32, u32, u32), GridError> {
    // Taken before the checks read the index: if the layer moves on
    // meanwhile, the store sees another version and refuses.
    let expected = ctx.layers.version(tenant).unwrap_or(0);
    check_import(tenant, pairs, ctx.layers.get(tenant).as_deref())?;
    let done = match store::upsert(&ctx.db, tenant, pairs, Some(&ctx.outbox), Some(expected)).await
    {
        Ok(done) => done,
        Err(store::UpsertError::Stale) => {
            ctx.layers.reload(&ctx.db, tenant).await?;
            return Err(GridError::LayerChanged {
                resend: tr!("请重新发送图层", "send the layer again"),
            });
        }
        Err(store::UpsertError::Db(e)) => return Err(e.into()),
    };
    let (created, updated) = (count(done.created.len()), count(done.updated.len()));
    ctx.layers.reload(&ctx.db, tenant).await?;
    let total = store::count(&ctx.db, tenant).await?;
    tracing::info!(tenant = %tenant, created, updated, total, "grid layer imported");
    Ok((created, updated, total))
}

/// An export's `kind` filter: empty = every kind.
pub(super) fn export_kind(kind: &str) -> Result<Option<&'static str>, GridError> {
    match kind.trim() {
        "" => Ok(None),
        k => Kind::parse(k).map(|k| Some(k.as_str())).ok_or_else(|| {
            GridError::field(
                "kind",
                tr!(
                    "必须是 basic、micro、dedicated 或 professional",
                    "must be basic, micro, dedicated or professional"
                ),
            )
        }),
    }
}

pub async fn export_layer(
    ctx: &Ctx,
    who: &Principal,
    req: ExportLayerRequest,
) -> Result<ExportLayerResponse, GridError> {
    who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::Dispatcher])?;
    let kind = export_kind(&req.kind)?;
    let rows = store::rows(&ctx.db, Some(who.tenant.code()), kind).await?;
    let geojson = store::feature_collection(&rows)?;
    Ok(ExportLayerResponse {
        geojson,
        count: count(rows.len()),
    })
}

pub async fn locate(
    ctx: &Ctx,
    who: &Principal,
    req: LocateRequest,
) -> Result<LocateResponse, GridError> {
    who.require_any(&LOCATORS)?;
    let tenant = who.tenant.code();
    // No point but an address: the registry building it names.
    let building = if req.lat == 0.0 && req.lon == 0.0 && !req.address.trim().is_empty() {
        Some(
            registry::building_for(&ctx.db, tenant, &req.address)
                .await?
                .ok_or(GridError::AddressUnknown)?,
        )
    } else {
        check_point("", req.lat, req.lon)?;
        None
    };
    let (lat, lon) = building
        .as_ref()
        .map_or((req.lat, req.lon), |b| (b.lat, b.lon));
    let mut out = match req.as_of.as_ref() {
        None => answer(&ctx.layers, tenant, lat, lon),
        Some(ts) => {
            let at = from_timestamp(ts).ok_or_else(|| {
                GridError::field("as_of", tr!("必须是有效的时间", "must be a valid time"))
            })?;
            answer_from(
                &history::as_of(&ctx.db, tenant, at, lon, lat).await?,
                lat,
                lon,
            )
        }
    };
    if req.as_of.is_none()
        && let Some(g) = &out.grid
    {
        out.staff = staff(ctx, tenant, &g.code).await?;
    }
    if let Some(b) = building {
        out.building_code = b.code;
        out.building_address = b.address;
    }
    Ok(out)
}

/// A grid's active workers, for locate and a grid's page (phones masked).
pub(super) async fn staff(
    ctx: &Ctx,
    tenant: &str,
    grid: &str,
) -> Result<Vec<StaffMember>, GridError> {
    Ok(
        workers::list(&ctx.db, &ctx.keyring, tenant, None, Some(grid))
            .await?
            .into_iter()
            .filter(|w| w.active)
            .map(|w| StaffMember {
                worker_id: w.id,
                name: w.name,
                kind: w.kind,
                phone_masked: jiesu_pii::mask_phone(&w.phone),
                stars: w.stars,
            })
            .collect(),
    )
}

pub fn locate_for(layers: &Layers, r: &LocateForRequest) -> Result<LocateResponse, GridError> {
    if jiesu_auth::Region::parse(&r.tenant).is_err() {
        return Err(GridError::field(
            "tenant",
            tr!("必须是行政区划代码", "must be a region code"),
        ));
    }
    check_point("", r.lat, r.lon)?;
    Ok(answer(layers, &r.tenant, r.lat, r.lon))
}

/// What a tenant's index says about a point.
pub fn answer(layers: &Layers, tenant: &str, lat: f64, lon: f64) -> LocateResponse {
    match layers.get(tenant) {
        Some(index) => answer_from(&index, lat, lon),
        None => LocateResponse::default(),
    }
}

/// What an index says about a point.
pub fn answer_from(index: &GridIndex, lat: f64, lon: f64) -> LocateResponse {
    let found = index.locate(lon, lat);
    let named = |g: Option<&Grid>| {
        let g = g?;
        Some(GridRef {
            code: g.code.clone(),
            name: g.name.clone(),
            kind: g.kind.as_str().to_owned(),
        })
    };
    let community = found.community.unwrap_or_default().to_owned();
    let prefix = |n: usize| community.get(..n).unwrap_or_default().to_owned();
    LocateResponse {
        grid: named(found.basic),
        micro: named(found.micro),
        dedicated: named(found.dedicated),
        professional: found
            .professional
            .iter()
            .filter_map(|g| named(Some(g)))
            .collect(),
        street_code: prefix(9),
        county_code: prefix(6),
        community_code: community,
        outside_territory: index.outside(lon, lat),
        ..LocateResponse::default()
    }
}

pub async fn import_regions(
    ctx: &Ctx,
    who: &Principal,
    req: RegionsCsv,
) -> Result<ImportRegionsResponse, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code();
    let list = regions::read_csv(&req.csv, tenant).map_err(|p| refuse_regions(&p))?;
    store::upsert_regions(&ctx.db, tenant, &list).await?;
    tracing::info!(tenant = %tenant, regions = list.len(), "regions imported");
    Ok(ImportRegionsResponse {
        regions: count(list.len()),
    })
}

pub async fn list_regions(
    ctx: &Ctx,
    who: &Principal,
    req: ListRegionsRequest,
) -> Result<ListRegionsResponse, GridError> {
    who.require_any(&LOCATORS)?;
    let under = req.under.trim();
    if !under.is_empty() && regions::level(under).is_none() {
        return Err(GridError::field(
            "under",
            tr!("必须是行政区划代码", "must be a division code"),
        ));
    }
    // The caller's scope bounds what is listed.
    let Some(prefix) = listing_prefix(who.scope.prefix(), under) else {
        return Ok(ListRegionsResponse::default());
    };
    let regions = store::regions(&ctx.db, who.tenant.code(), prefix).await?;
    Ok(ListRegionsResponse { regions })
}
