//! The JWT-authenticated `IntakeService`: each call names its caller and
//! hands the request to `Core`.

use std::sync::Arc;

use jiesu_auth::{Principal, principal};
use jiesu_proto::intake::{
    AddInformationRequest, Attachment, AttachmentData, ChannelCredential, CreateTicketRequest,
    CreateTicketResponse, DisableChannelRequest, ExportCategoriesRequest, ExportCategoriesResponse,
    FindDuplicatesRequest, FindDuplicatesResponse, GetAttachmentRequest, GetTicketRequest,
    ImportCategoriesRequest, ImportCategoriesResponse, IntakeStats, IntakeStatsRequest, KbEntry,
    ListCategoriesRequest, ListCategoriesResponse, ListChannelsRequest, ListChannelsResponse,
    ListContactReadsRequest, ListContactReadsResponse, ListTicketsRequest, ListTicketsResponse,
    MergeTicketRequest, RegisterChannelRequest, RegisteredChannel, RetireKbEntryRequest,
    RotateChannelCredentialRequest, SearchKbRequest, SearchKbResponse, SuggestCategoriesRequest,
    SuggestCategoriesResponse, Ticket, UnmergeTicketRequest, UploadAttachmentRequest,
    WithdrawTicketRequest, intake_service_server::IntakeService,
};
use tonic::{Request, Response, Status};

use super::{Core, IntakeError, READERS};

/// The JWT-authenticated service.
#[derive(Clone)]
pub struct IntakeApi {
    core: Arc<Core>,
}

impl IntakeApi {
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    principal(request)
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn create_ticket(
        &self,
        request: Request<CreateTicketRequest>,
    ) -> Result<Response<CreateTicketResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let created = self
            .core
            .guarded(move |core| async move { core.create_as(&who, &req).await })
            .await?;
        Ok(Response::new(created))
    }

    async fn get_ticket(
        &self,
        request: Request<GetTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.get(&who, &request.get_ref().id).await?,
        ))
    }

    async fn list_categories(
        &self,
        request: Request<ListCategoriesRequest>,
    ) -> Result<Response<ListCategoriesResponse>, Status> {
        let who = caller(&request)?;
        who.require_any(READERS).map_err(IntakeError::from)?;
        Ok(Response::new(
            self.core.categories(who.tenant.code()).await?,
        ))
    }

    async fn suggest_categories(
        &self,
        request: Request<SuggestCategoriesRequest>,
    ) -> Result<Response<SuggestCategoriesResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.suggest(&who, request.get_ref()).await?,
        ))
    }

    async fn find_duplicates(
        &self,
        request: Request<FindDuplicatesRequest>,
    ) -> Result<Response<FindDuplicatesResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.find_duplicates(&who, request.get_ref()).await?,
        ))
    }

    async fn upload_attachment(
        &self,
        request: Request<UploadAttachmentRequest>,
    ) -> Result<Response<Attachment>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.upload_attachment(&who, request.get_ref()).await?,
        ))
    }

    async fn get_attachment(
        &self,
        request: Request<GetAttachmentRequest>,
    ) -> Result<Response<AttachmentData>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.get_attachment(&who, request.get_ref()).await?,
        ))
    }

    async fn save_kb_entry(&self, request: Request<KbEntry>) -> Result<Response<KbEntry>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.save_kb_entry(&who, request.get_ref()).await?,
        ))
    }

    async fn retire_kb_entry(
        &self,
        request: Request<RetireKbEntryRequest>,
    ) -> Result<Response<KbEntry>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.retire_kb_entry(&who, request.get_ref()).await?,
        ))
    }

    async fn search_kb(
        &self,
        request: Request<SearchKbRequest>,
    ) -> Result<Response<SearchKbResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.search_kb(&who, request.get_ref()).await?,
        ))
    }

    async fn get_intake_stats(
        &self,
        request: Request<IntakeStatsRequest>,
    ) -> Result<Response<IntakeStats>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.intake_stats(&who, request.get_ref()).await?,
        ))
    }

    async fn top_phrases(
        &self,
        request: Request<jiesu_proto::intake::TopPhrasesRequest>,
    ) -> Result<Response<jiesu_proto::intake::TopPhrasesResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.top_phrases(&who, request.get_ref()).await?,
        ))
    }

    async fn import_categories(
        &self,
        request: Request<ImportCategoriesRequest>,
    ) -> Result<Response<ImportCategoriesResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.import_categories(&who, request.get_ref()).await?,
        ))
    }

    async fn export_categories(
        &self,
        request: Request<ExportCategoriesRequest>,
    ) -> Result<Response<ExportCategoriesResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.export_categories(&who, request.get_ref()).await?,
        ))
    }

    async fn register_channel(
        &self,
        request: Request<RegisterChannelRequest>,
    ) -> Result<Response<ChannelCredential>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.register_channel(&who, request.get_ref()).await?,
        ))
    }

    async fn list_channels(
        &self,
        request: Request<ListChannelsRequest>,
    ) -> Result<Response<ListChannelsResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(self.core.list_channels(&who).await?))
    }

    async fn rotate_channel_credential(
        &self,
        request: Request<RotateChannelCredentialRequest>,
    ) -> Result<Response<ChannelCredential>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.rotate_channel(&who, request.get_ref()).await?,
        ))
    }

    async fn add_information(
        &self,
        request: Request<AddInformationRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.add_information(&who, request.get_ref()).await?,
        ))
    }

    async fn list_tickets(
        &self,
        request: Request<ListTicketsRequest>,
    ) -> Result<Response<ListTicketsResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.list_tickets(&who, request.get_ref()).await?,
        ))
    }

    async fn list_contact_reads(
        &self,
        request: Request<ListContactReadsRequest>,
    ) -> Result<Response<ListContactReadsResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.contact_reads(&who, request.get_ref()).await?,
        ))
    }

    async fn withdraw_ticket(
        &self,
        request: Request<WithdrawTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.withdraw(&who, request.get_ref()).await?,
        ))
    }

    async fn merge_ticket(
        &self,
        request: Request<MergeTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.merge(&who, request.get_ref()).await?,
        ))
    }

    async fn unmerge_ticket(
        &self,
        request: Request<UnmergeTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core.unmerge(&who, request.get_ref()).await?,
        ))
    }

    async fn disable_channel(
        &self,
        request: Request<DisableChannelRequest>,
    ) -> Result<Response<RegisteredChannel>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.core
                .disable_channel(&who, &request.get_ref().channel_id)
                .await?,
        ))
    }
}
