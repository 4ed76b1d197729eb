//! gRPC handlers of grid: each checks the caller and hands over to the
//! module that owns the matter (layers here; history and reshaping,
//! people, duties, grid events).

use jiesu_auth::{Role, principal};
use jiesu_proto::{
    grid::{
        AssignWorkerRequest, BroadcastReceipt, BroadcastRequest, BuildingsCsv, CheckInRequest,
        CloseEventRequest, DutyComplianceRequest, DutyComplianceResponse, DutyRules, DutyTask,
        EventStatsRequest, EventStatsResponse, ExportLayerRequest, ExportLayerResponse,
        GenerateDutiesRequest, GenerateDutiesResponse, GetDutyRulesRequest, GetEventRequest,
        GetGridRequest, GetImportRequest, GetKeyPersonRequest, GridChange, GridDetail, GridEvent,
        GridRef, Household, ImportBuildingsResponse, ImportLayerRequest, ImportLayerResponse,
        ImportPairsResponse, ImportRegionsResponse, KeyPerson, LayerChunk, LayerImport,
        ListDutyTasksRequest, ListDutyTasksResponse, ListEventsRequest, ListEventsResponse,
        ListHouseholdsRequest, ListHouseholdsResponse, ListKeyPersonsRequest,
        ListKeyPersonsResponse, ListPersonalDataReadsRequest, ListPersonalDataReadsResponse,
        ListRegionsRequest, ListRegionsResponse, ListWorkersRequest, ListWorkersResponse,
        LocateForRequest, LocateRequest, LocateResponse, MergeGridsRequest, PairsCsv,
        RateWorkerRequest, RegionsCsv, ReportEventRequest, SplitGridRequest, WhistleEventRequest,
        Worker, grid_service_server::GridService,
        internal_grid_service_server::InternalGridService,
    },
    status,
    time::from_timestamp,
};
use tonic::{Request, Response, Status};

use crate::{
    ctx::{Ctx, count, db_error, refuse},
    domain::{
        index::GridIndex,
        layer::{self, Grid, Kind},
    },
    store::{self, Layers},
};

pub struct GridApi {
    ctx: Ctx,
}

impl GridApi {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

/// Runs a handler with the verified caller.
macro_rules! with_caller {
    ($self:ident, $request:ident, $method:ident) => {{
        let who = principal(&$request)?;
        $self
            .ctx
            .$method(&who, $request.into_inner())
            .await
            .map(Response::new)
    }};
}

pub const LOCATORS: [Role; 7] = [
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
        let pairs = layer::read_with_geometry(&request.get_ref().geojson)
            .map_err(|p| refuse("geojson", &p))?;
        let (created, updated, total) = self.ctx.import_grids(who.tenant.code(), &pairs).await?;
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
        let kind = export_kind(&request.get_ref().kind)?;
        let rows = store::rows(&self.ctx.db, Some(who.tenant.code()), kind)
            .await
            .map_err(db_error)?;
        let geojson = store::feature_collection(&rows).map_err(db_error)?;
        Ok(Response::new(ExportLayerResponse {
            geojson,
            count: count(rows.len()),
        }))
    }

    async fn locate(
        &self,
        request: Request<LocateRequest>,
    ) -> Result<Response<LocateResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&LOCATORS)?;
        let req = request.into_inner();
        let tenant = who.tenant.code();
        let (lat, lon, building) =
            if req.lat == 0.0 && req.lon == 0.0 && !req.address.trim().is_empty() {
                match self.ctx.building_for(tenant, &req.address).await? {
                    Some((code, address, lat, lon)) => (lat, lon, Some((code, address))),
                    None => {
                        return Err(status::coded(
                            tonic::Code::NotFound,
                            "address_unknown",
                            "address: no building of the registry matches it",
                            Some("address"),
                        ));
                    }
                }
            } else {
                check_point(req.lat, req.lon)?;
                (req.lat, req.lon, None)
            };
        let mut out = match req.as_of.as_ref() {
            None => answer(&self.ctx.layers, tenant, lat, lon),
            Some(ts) => {
                let at = from_timestamp(ts)
                    .ok_or_else(|| status::invalid_field("as_of", "must be a valid time"))?;
                let index = crate::history::as_of(&self.ctx.db, tenant, at, lon, lat)
                    .await
                    .map_err(db_error)?;
                answer_from(&index, lat, lon)
            }
        };
        if req.as_of.is_none()
            && let Some(g) = &out.grid
        {
            out.staff = self.ctx.staff(tenant, &g.code).await?;
        }
        if let Some((code, address)) = building {
            out.building_code = code;
            out.building_address = address;
        }
        Ok(Response::new(out))
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
        store::upsert_regions(&self.ctx.db, &tenant, &list)
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
        let regions = store::regions(&self.ctx.db, who.tenant.code(), prefix)
            .await
            .map_err(db_error)?;
        Ok(Response::new(ListRegionsResponse { regions }))
    }

    async fn stream_layer(
        &self,
        request: Request<tonic::Streaming<LayerChunk>>,
    ) -> Result<Response<LayerImport>, Status> {
        with_caller!(self, request, stream_layer)
    }

    type StreamExportStream =
        tokio_stream::wrappers::ReceiverStream<Result<jiesu_proto::grid::ExportChunk, Status>>;

    async fn stream_export(
        &self,
        request: Request<ExportLayerRequest>,
    ) -> Result<Response<Self::StreamExportStream>, Status> {
        let who = principal(&request)?;
        let kind = export_kind(&request.get_ref().kind)?;
        self.ctx.stream_export(&who, kind).map(Response::new)
    }

    async fn get_import(
        &self,
        request: Request<GetImportRequest>,
    ) -> Result<Response<LayerImport>, Status> {
        with_caller!(self, request, get_import)
    }

    async fn get_grid(
        &self,
        request: Request<GetGridRequest>,
    ) -> Result<Response<GridDetail>, Status> {
        with_caller!(self, request, get_grid)
    }

    async fn split_grid(
        &self,
        request: Request<SplitGridRequest>,
    ) -> Result<Response<GridChange>, Status> {
        with_caller!(self, request, split)
    }

    async fn merge_grids(
        &self,
        request: Request<MergeGridsRequest>,
    ) -> Result<Response<GridChange>, Status> {
        with_caller!(self, request, merge)
    }

    async fn import_pairs(
        &self,
        request: Request<PairsCsv>,
    ) -> Result<Response<ImportPairsResponse>, Status> {
        with_caller!(self, request, import_pairs)
    }

    async fn import_buildings(
        &self,
        request: Request<BuildingsCsv>,
    ) -> Result<Response<ImportBuildingsResponse>, Status> {
        with_caller!(self, request, import_buildings)
    }

    async fn save_worker(&self, request: Request<Worker>) -> Result<Response<Worker>, Status> {
        with_caller!(self, request, save_worker)
    }

    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        with_caller!(self, request, list_workers)
    }

    async fn assign_worker(
        &self,
        request: Request<AssignWorkerRequest>,
    ) -> Result<Response<Worker>, Status> {
        with_caller!(self, request, assign_worker)
    }

    async fn rate_worker(
        &self,
        request: Request<RateWorkerRequest>,
    ) -> Result<Response<Worker>, Status> {
        with_caller!(self, request, rate_worker)
    }

    async fn save_household(
        &self,
        request: Request<Household>,
    ) -> Result<Response<Household>, Status> {
        with_caller!(self, request, save_household)
    }

    async fn list_households(
        &self,
        request: Request<ListHouseholdsRequest>,
    ) -> Result<Response<ListHouseholdsResponse>, Status> {
        with_caller!(self, request, list_households)
    }

    async fn save_key_person(
        &self,
        request: Request<KeyPerson>,
    ) -> Result<Response<KeyPerson>, Status> {
        with_caller!(self, request, save_key_person)
    }

    async fn list_key_persons(
        &self,
        request: Request<ListKeyPersonsRequest>,
    ) -> Result<Response<ListKeyPersonsResponse>, Status> {
        with_caller!(self, request, list_key_persons)
    }

    async fn get_key_person(
        &self,
        request: Request<GetKeyPersonRequest>,
    ) -> Result<Response<KeyPerson>, Status> {
        with_caller!(self, request, get_key_person)
    }

    async fn list_personal_data_reads(
        &self,
        request: Request<ListPersonalDataReadsRequest>,
    ) -> Result<Response<ListPersonalDataReadsResponse>, Status> {
        with_caller!(self, request, list_reads)
    }

    async fn get_duty_rules(
        &self,
        request: Request<GetDutyRulesRequest>,
    ) -> Result<Response<DutyRules>, Status> {
        let who = principal(&request)?;
        self.ctx.get_rules(&who).await.map(Response::new)
    }

    async fn save_duty_rules(
        &self,
        request: Request<DutyRules>,
    ) -> Result<Response<DutyRules>, Status> {
        with_caller!(self, request, save_rules)
    }

    async fn generate_duties(
        &self,
        request: Request<GenerateDutiesRequest>,
    ) -> Result<Response<GenerateDutiesResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin])?;
        let at = match request.get_ref().at.as_ref() {
            None => chrono::Utc::now(),
            Some(ts) => from_timestamp(ts)
                .ok_or_else(|| status::invalid_field("at", "must be a valid time"))?,
        };
        let created = self
            .ctx
            .generate(who.tenant.code(), at)
            .await
            .map_err(db_error)?;
        Ok(Response::new(GenerateDutiesResponse { created }))
    }

    async fn list_duty_tasks(
        &self,
        request: Request<ListDutyTasksRequest>,
    ) -> Result<Response<ListDutyTasksResponse>, Status> {
        with_caller!(self, request, list_tasks)
    }

    async fn check_in(
        &self,
        request: Request<CheckInRequest>,
    ) -> Result<Response<DutyTask>, Status> {
        with_caller!(self, request, check_in)
    }

    async fn duty_compliance(
        &self,
        request: Request<DutyComplianceRequest>,
    ) -> Result<Response<DutyComplianceResponse>, Status> {
        with_caller!(self, request, compliance)
    }

    async fn report_event(
        &self,
        request: Request<ReportEventRequest>,
    ) -> Result<Response<GridEvent>, Status> {
        with_caller!(self, request, report_event)
    }

    async fn close_event(
        &self,
        request: Request<CloseEventRequest>,
    ) -> Result<Response<GridEvent>, Status> {
        with_caller!(self, request, close_event)
    }

    async fn whistle_event(
        &self,
        request: Request<WhistleEventRequest>,
    ) -> Result<Response<GridEvent>, Status> {
        with_caller!(self, request, whistle_event)
    }

    async fn get_event(
        &self,
        request: Request<GetEventRequest>,
    ) -> Result<Response<GridEvent>, Status> {
        with_caller!(self, request, get_event)
    }

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        with_caller!(self, request, list_events)
    }

    async fn event_stats(
        &self,
        request: Request<EventStatsRequest>,
    ) -> Result<Response<EventStatsResponse>, Status> {
        with_caller!(self, request, event_stats)
    }

    async fn broadcast(
        &self,
        request: Request<BroadcastRequest>,
    ) -> Result<Response<BroadcastReceipt>, Status> {
        with_caller!(self, request, broadcast)
    }
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
        ..LocateResponse::default()
    }
}

/// An export's `kind` filter: empty = every kind.
fn export_kind(kind: &str) -> Result<Option<&'static str>, Status> {
    match kind.trim() {
        "" => Ok(None),
        k => Kind::parse(k).map(|k| Some(k.as_str())).ok_or_else(|| {
            status::invalid_field("kind", "must be basic, micro, dedicated or professional")
        }),
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
