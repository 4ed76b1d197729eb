//! gRPC handlers of grid.

use jiesu_auth::{Role, principal};
use jiesu_proto::{
    grid::{
        ExportLayerRequest, ExportLayerResponse, GridRef, ImportLayerRequest, ImportLayerResponse,
        ImportRegionsResponse, ListRegionsRequest, ListRegionsResponse, LocateForRequest,
        LocateRequest, LocateResponse, RegionsCsv, grid_service_server::GridService,
        internal_grid_service_server::InternalGridService,
    },
    status,
};
use sea_orm::{DatabaseConnection, DbErr};
use tonic::{Request, Response, Status};

use crate::{
    domain::layer::{self, Grid, Kind},
    store::{self, Layers},
};

pub struct GridApi {
    db: DatabaseConnection,
    layers: Layers,
    outbox: jiesu_bus::Outbox,
}

impl GridApi {
    pub fn new(db: DatabaseConnection, layers: Layers, outbox: jiesu_bus::Outbox) -> Self {
        Self { db, layers, outbox }
    }
}

fn db_error(e: DbErr) -> Status {
    tracing::error!(error = %e, "grid database error");
    status::internal()
}

/// Lists problems in one InvalidArgument on `geojson`, at most 20 shown.
fn refuse(problems: &[String]) -> Status {
    let shown: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    status::invalid_field("geojson", format!("{}{tail}", shown.join("; ")))
}

const LOCATORS: [Role; 7] = [
    Role::Agent,
    Role::Dispatcher,
    Role::Handler,
    Role::GridWorker,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::PlatformAdmin,
];

#[tonic::async_trait]
impl GridService for GridApi {
    async fn import_layer(
        &self,
        request: Request<ImportLayerRequest>,
    ) -> Result<Response<ImportLayerResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code().to_owned();
        let text = &request.get_ref().geojson;
        let pairs = layer::read_with_geometry(text).map_err(|p| refuse(&p))?;
        let grids: Vec<&Grid> = pairs.iter().map(|(g, _)| g).collect();
        let outside: Vec<String> = grids
            .iter()
            .filter(|g| !g.community.starts_with(&tenant))
            .map(|g| {
                format!(
                    "{}: community {} is not in the tenant's region",
                    g.code, g.community
                )
            })
            .collect();
        if !outside.is_empty() {
            return Err(refuse(&outside));
        }
        // Overlaps with each other and with the tenant's other grids.
        let new_codes: Vec<&str> = grids.iter().map(|g| g.code.as_str()).collect();
        let mut combined: Vec<Grid> = self
            .layers
            .get(&tenant)
            .map(|idx| {
                idx.grids()
                    .iter()
                    .filter(|g| !new_codes.contains(&g.code.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        combined.extend(grids.iter().map(|g| (*g).clone()));
        let clashes: Vec<String> = layer::overlaps(&combined)
            .into_iter()
            .filter(|(a, b)| new_codes.contains(&a.as_str()) || new_codes.contains(&b.as_str()))
            .map(|(a, b)| format!("basic grids {a} and {b} of one community overlap"))
            .collect();
        if !clashes.is_empty() {
            return Err(refuse(&clashes));
        }

        let done = store::upsert(&self.db, &tenant, &pairs, Some(&self.outbox))
            .await
            .map_err(db_error)?;
        let (created, updated) = (
            u32::try_from(done.created.len()).unwrap_or(u32::MAX),
            u32::try_from(done.updated.len()).unwrap_or(u32::MAX),
        );
        self.layers
            .reload(&self.db, &tenant)
            .await
            .map_err(db_error)?;
        let total = store::count(&self.db, &tenant).await.map_err(db_error)?;
        tracing::info!(tenant = %tenant, created, updated, total, "grid layer imported");
        Ok(Response::new(ImportLayerResponse {
            created,
            updated,
            total,
        }))
    }

    async fn export_layer(
        &self,
        request: Request<ExportLayerRequest>,
    ) -> Result<Response<ExportLayerResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::Dispatcher])?;
        let kind = match request.get_ref().kind.trim() {
            "" => None,
            k => Some(
                Kind::parse(k)
                    .ok_or_else(|| {
                        status::invalid_field(
                            "kind",
                            "must be basic, micro, dedicated or professional",
                        )
                    })?
                    .as_str(),
            ),
        };
        let rows = store::rows(&self.db, Some(who.tenant.code()), kind)
            .await
            .map_err(db_error)?;
        let geojson = store::feature_collection(&rows).map_err(db_error)?;
        Ok(Response::new(ExportLayerResponse {
            geojson,
            count: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn locate(
        &self,
        request: Request<LocateRequest>,
    ) -> Result<Response<LocateResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&LOCATORS)?;
        let LocateRequest { lat, lon } = *request.get_ref();
        check_point(lat, lon)?;
        Ok(Response::new(answer(
            &self.layers,
            who.tenant.code(),
            lat,
            lon,
        )))
    }

    async fn import_regions(
        &self,
        request: Request<RegionsCsv>,
    ) -> Result<Response<ImportRegionsResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code().to_owned();
        let list =
            crate::domain::regions::read_csv(&request.get_ref().csv, &tenant).map_err(|p| {
                let shown: Vec<&str> = p.iter().take(20).map(String::as_str).collect();
                status::invalid_field("csv", shown.join("; "))
            })?;
        store::upsert_regions(&self.db, &tenant, &list)
            .await
            .map_err(db_error)?;
        tracing::info!(tenant = %tenant, regions = list.len(), "regions imported");
        Ok(Response::new(ImportRegionsResponse {
            regions: u32::try_from(list.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn list_regions(
        &self,
        request: Request<ListRegionsRequest>,
    ) -> Result<Response<ListRegionsResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&LOCATORS)?;
        let under = request.get_ref().under.trim();
        if !under.is_empty() && crate::domain::regions::level(under).is_none() {
            return Err(status::invalid_field("under", "must be a division code"));
        }
        // The caller's scope bounds what is listed.
        let scope = who.scope.prefix();
        let prefix = if under.is_empty() || scope.starts_with(under) {
            scope
        } else if under.starts_with(scope) {
            under
        } else {
            return Ok(Response::new(ListRegionsResponse::default()));
        };
        let regions = store::regions(&self.db, who.tenant.code(), prefix)
            .await
            .map_err(db_error)?;
        Ok(Response::new(ListRegionsResponse { regions }))
    }
}

/// What a tenant's index says about a point.
pub fn answer(layers: &Layers, tenant: &str, lat: f64, lon: f64) -> LocateResponse {
    let Some(index) = layers.get(tenant) else {
        return LocateResponse::default();
    };
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
    }
}

fn check_point(lat: f64, lon: f64) -> Result<(), Status> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(status::invalid_field(
            "lat",
            "must be a latitude between -90 and 90",
        ));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(status::invalid_field(
            "lon",
            "must be a longitude between -180 and 180",
        ));
    }
    Ok(())
}

/// Locating for another service (dispatch routing a ticket), which
/// presents its service key instead of a person's token.
pub struct InternalApi {
    layers: Layers,
    clients: Vec<String>,
}

impl InternalApi {
    pub fn new(layers: Layers, clients: Vec<String>) -> Self {
        Self { layers, clients }
    }
}

#[tonic::async_trait]
impl InternalGridService for InternalApi {
    async fn locate_for(
        &self,
        request: Request<LocateForRequest>,
    ) -> Result<Response<LocateResponse>, Status> {
        jiesu_auth::service_key::verify(&request, &self.clients)?;
        let r = request.get_ref();
        if jiesu_auth::Region::parse(&r.tenant).is_err() {
            return Err(status::invalid_field("tenant", "must be a region code"));
        }
        check_point(r.lat, r.lon)?;
        Ok(Response::new(answer(&self.layers, &r.tenant, r.lat, r.lon)))
    }
}
