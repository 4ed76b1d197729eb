//! Grid's gRPC edge: the `GridService` and `InternalGridService` impls,
//! each call handed to the module of its resource (layers, reshape,
//! people, duties, matters), which checks the caller's role, translates
//! the message and returns a [`GridError`]; here it becomes a `Status`.

mod duties;
mod layer_stream;
mod layers;
mod matters;
mod people;
mod reshape;

use jiesu_auth::{Role, principal};
use jiesu_proto::grid::{
    AssignWorkerRequest, BroadcastReceipt, BroadcastRequest, BuildingsCsv, CheckInRequest,
    CloseEventRequest, DutyComplianceRequest, DutyComplianceResponse, DutyRules, DutyTask,
    EventStatsRequest, EventStatsResponse, ExportChunk, ExportLayerRequest, ExportLayerResponse,
    GenerateDutiesRequest, GenerateDutiesResponse, GetDutyRulesRequest, GetEventRequest,
    GetGridRequest, GetImportRequest, GetKeyPersonRequest, GridChange, GridDetail, GridEvent,
    Household, ImportBuildingsResponse, ImportLayerRequest, ImportLayerResponse,
    ImportPairsResponse, ImportRegionsResponse, KeyPerson, LayerChunk, LayerImport,
    ListDutyTasksRequest, ListDutyTasksResponse, ListEventsRequest, ListEventsResponse,
    ListHouseholdsRequest, ListHouseholdsResponse, ListKeyPersonsRequest, ListKeyPersonsResponse,
    ListPersonalDataReadsRequest, ListPersonalDataReadsResponse, ListRegionsRequest,
    ListRegionsResponse, ListWorkersRequest, ListWorkersResponse, LocateForRequest, LocateRequest,
    LocateResponse, MergeGridsRequest, PairsCsv, RateWorkerRequest, RegionsCsv, ReportEventRequest,
    SplitGridRequest, WhistleEventRequest, Worker, grid_service_server::GridService,
    internal_grid_service_server::InternalGridService,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use layers::{answer, answer_from};

use crate::{ctx::Ctx, store::Layers};

/// Roles that may locate a point and read a grid.
pub const LOCATORS: [Role; 7] = [
    Role::Agent,
    Role::Dispatcher,
    Role::Handler,
    Role::GridWorker,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::PlatformAdmin,
];

pub struct GridApi {
    ctx: Ctx,
}

impl GridApi {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

/// Runs `handler(ctx, caller, message)` for a verified caller.
macro_rules! handle {
    ($self:ident, $request:ident, $handler:path) => {{
        let who = principal(&$request)?;
        $handler(&$self.ctx, &who, $request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }};
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl GridService for GridApi {
    async fn import_layer(&self, r: Request<ImportLayerRequest>) -> Answer<ImportLayerResponse> {
        handle!(self, r, layers::import_layer)
    }
    async fn export_layer(&self, r: Request<ExportLayerRequest>) -> Answer<ExportLayerResponse> {
        handle!(self, r, layers::export_layer)
    }
    async fn locate(&self, r: Request<LocateRequest>) -> Answer<LocateResponse> {
        handle!(self, r, layers::locate)
    }
    async fn import_regions(&self, r: Request<RegionsCsv>) -> Answer<ImportRegionsResponse> {
        handle!(self, r, layers::import_regions)
    }
    async fn list_regions(&self, r: Request<ListRegionsRequest>) -> Answer<ListRegionsResponse> {
        handle!(self, r, layers::list_regions)
    }
    async fn stream_layer(&self, r: Request<Streaming<LayerChunk>>) -> Answer<LayerImport> {
        handle!(self, r, layer_stream::stream_layer)
    }
    type StreamExportStream = ReceiverStream<Result<ExportChunk, Status>>;
    async fn stream_export(
        &self,
        r: Request<ExportLayerRequest>,
    ) -> Answer<Self::StreamExportStream> {
        let who = principal(&r)?;
        layer_stream::stream_export(&self.ctx, &who, r.get_ref())
            .map(Response::new)
            .map_err(Status::from)
    }
    async fn get_import(&self, r: Request<GetImportRequest>) -> Answer<LayerImport> {
        handle!(self, r, layer_stream::get_import)
    }
    async fn get_grid(&self, r: Request<GetGridRequest>) -> Answer<GridDetail> {
        handle!(self, r, reshape::get_grid)
    }
    async fn split_grid(&self, r: Request<SplitGridRequest>) -> Answer<GridChange> {
        handle!(self, r, reshape::split)
    }
    async fn merge_grids(&self, r: Request<MergeGridsRequest>) -> Answer<GridChange> {
        handle!(self, r, reshape::merge)
    }
    async fn import_pairs(&self, r: Request<PairsCsv>) -> Answer<ImportPairsResponse> {
        handle!(self, r, reshape::import_pairs)
    }
    async fn import_buildings(&self, r: Request<BuildingsCsv>) -> Answer<ImportBuildingsResponse> {
        handle!(self, r, reshape::import_buildings)
    }
    async fn save_worker(&self, r: Request<Worker>) -> Answer<Worker> {
        handle!(self, r, people::save_worker)
    }
    async fn list_workers(&self, r: Request<ListWorkersRequest>) -> Answer<ListWorkersResponse> {
        handle!(self, r, people::list_workers)
    }
    async fn assign_worker(&self, r: Request<AssignWorkerRequest>) -> Answer<Worker> {
        handle!(self, r, people::assign_worker)
    }
    async fn rate_worker(&self, r: Request<RateWorkerRequest>) -> Answer<Worker> {
        handle!(self, r, people::rate_worker)
    }
    async fn save_household(&self, r: Request<Household>) -> Answer<Household> {
        handle!(self, r, people::save_household)
    }
    async fn list_households(
        &self,
        r: Request<ListHouseholdsRequest>,
    ) -> Answer<ListHouseholdsResponse> {
        handle!(self, r, people::list_households)
    }
    async fn save_key_person(&self, r: Request<KeyPerson>) -> Answer<KeyPerson> {
        handle!(self, r, people::save_key_person)
    }
    async fn list_key_persons(
        &self,
        r: Request<ListKeyPersonsRequest>,
    ) -> Answer<ListKeyPersonsResponse> {
        handle!(self, r, people::list_key_persons)
    }
    async fn get_key_person(&self, r: Request<GetKeyPersonRequest>) -> Answer<KeyPerson> {
        handle!(self, r, people::get_key_person)
    }
    async fn list_personal_data_reads(
        &self,
        r: Request<ListPersonalDataReadsRequest>,
    ) -> Answer<ListPersonalDataReadsResponse> {
        handle!(self, r, people::list_reads)
    }
    async fn get_duty_rules(&self, r: Request<GetDutyRulesRequest>) -> Answer<DutyRules> {
        handle!(self, r, duties::get_rules)
    }
    async fn save_duty_rules(&self, r: Request<DutyRules>) -> Answer<DutyRules> {
        handle!(self, r, duties::save_rules)
    }
    async fn generate_duties(
        &self,
        r: Request<GenerateDutiesRequest>,
    ) -> Answer<GenerateDutiesResponse> {
        handle!(self, r, duties::generate)
    }
    async fn list_duty_tasks(
        &self,
        r: Request<ListDutyTasksRequest>,
    ) -> Answer<ListDutyTasksResponse> {
        handle!(self, r, duties::list_tasks)
    }
    async fn check_in(&self, r: Request<CheckInRequest>) -> Answer<DutyTask> {
        handle!(self, r, duties::check_in)
    }
    async fn duty_compliance(
        &self,
        r: Request<DutyComplianceRequest>,
    ) -> Answer<DutyComplianceResponse> {
        handle!(self, r, duties::compliance)
    }
    async fn report_event(&self, r: Request<ReportEventRequest>) -> Answer<GridEvent> {
        handle!(self, r, matters::report_event)
    }
    async fn close_event(&self, r: Request<CloseEventRequest>) -> Answer<GridEvent> {
        handle!(self, r, matters::close_event)
    }
    async fn whistle_event(&self, r: Request<WhistleEventRequest>) -> Answer<GridEvent> {
        handle!(self, r, matters::whistle_event)
    }
    async fn get_event(&self, r: Request<GetEventRequest>) -> Answer<GridEvent> {
        handle!(self, r, matters::get_event)
    }
    async fn list_events(&self, r: Request<ListEventsRequest>) -> Answer<ListEventsResponse> {
        handle!(self, r, matters::list_events)
    }
    async fn event_stats(&self, r: Request<EventStatsRequest>) -> Answer<EventStatsResponse> {
        handle!(self, r, matters::event_stats)
    }
    async fn broadcast(&self, r: Request<BroadcastRequest>) -> Answer<BroadcastReceipt> {
        handle!(self, r, matters::broadcast)
    }
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
    async fn locate_for(&self, request: Request<LocateForRequest>) -> Answer<LocateResponse> {
        jiesu_auth::service_key::verify(&request, &self.clients)?;
        layers::locate_for(&self.layers, request.get_ref())
            .map(Response::new)
            .map_err(Status::from)
    }
}
