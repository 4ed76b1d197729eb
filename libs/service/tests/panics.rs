//! A handler that panics answers `Internal` with a request id, and the
//! server goes on serving the next call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tonic::{Code, Request, Response, Status, service::Routes, transport::Server};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};

/// Panics when asked about "boom" (as a handler indexing bad input would).
struct Fragile;

#[tonic::async_trait]
impl Health for Fragile {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        if request.get_ref().service == "boom" {
            let mut v = serde_json::json!("");
            v["features"] = serde_json::json!(1);
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_server_keeps_serving() {
    let routes = jiesu_service::panics::guard(Routes::new(HealthServer::new(Fragile)), "test");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let ask = |service: &str| {
        Request::new(HealthCheckRequest {
            service: service.into(),
        })
    };
    let refused = client.check(ask("boom")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Internal, "{refused:?}");
    assert!(
        refused.message().contains("请求编号"),
        "{}",
        refused.message()
    );
    // The id survives to the edge, so a caller can quote it; nothing else.
    let problem = jiesu_proto::status::problem(&refused);
    assert_eq!(problem.code, "internal");
    assert_eq!(problem.message.zh, refused.message());
    assert!(
        problem
            .message
            .en
            .starts_with("internal error, request id ")
    );
    // The connection and the server survive.
    let ok = client.check(ask("")).await.unwrap().into_inner();
    assert_eq!(ok.status, ServingStatus::Serving as i32);
}
