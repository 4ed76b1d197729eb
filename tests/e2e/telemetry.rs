//! Traces leave the process over OTLP when an endpoint is configured, and
//! are flushed when the process is told to stop.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jiesu_testkit::wait_until;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

use crate::platform::LoneGateway;

/// A minimal OTLP collector: remembers (service.name, span name) pairs.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, String)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("lock");
        for rs in &request.get_ref().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    spans.push((service.clone(), span.name.clone()));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn spans_are_exported_over_otlp_and_flushed_on_sigterm() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let otlp = listener.local_addr().expect("addr");
    let svc = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let gw = LoneGateway::start(
        "otlp",
        vec![(
            "JIESU__TELEMETRY__OTLP_ENDPOINT".into(),
            format!("http://{otlp}"),
        )],
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let _ = client
            .get(format!("http://127.0.0.1:{}/api/v1/openapi.json", gw.http))
            .send()
            .await;
    }
    assert_eq!(gw.terminate().await, Some(0));
    let spans = wait_until(Duration::from_secs(10), "spans at the collector", || {
        let spans = collector.spans.lock().expect("lock").clone();
        async move {
            spans
                .iter()
                .any(|(_, name)| name == "http")
                .then_some(spans)
        }
    })
    .await;
    assert!(
        spans
            .iter()
            .any(|(service, name)| name == "http" && service.contains("jiesu-gateway")),
        "{spans:?}"
    );
}
