//! Open311 GeoReport v2, one base URL per tenant: `/open311/v2/{tenant}/`.
//!
//! Services are the tenant's leaf categories; their attributes are the
//! category's questions. `POST requests` needs the api_key of an Open311
//! channel registered by the tenant admin; reads are public and show no
//! personal data. Every answer exists as `.json` and `.xml`; errors use the
//! spec's `[{"code","description"}]` / `<errors>` shape with 400, 403, 404
//! (and 429, 503 where the platform needs them). Datetimes carry +08:00.
//! `service_request_id` is the tracking number (受理编号).
//!
//! `params` reads and checks what a client sent, `render` writes the spec's
//! documents, `handlers` ties them to intake. The routes are not in the
//! OpenAPI document: the GeoReport specification describes them.

mod handlers;
mod params;
pub(crate) mod render;

use axum::{http::StatusCode, routing::get};
use jiesu_common::Text;
use tonic::Code;
use utoipa_axum::router::OpenApiRouter;

use crate::{AppState, error::ApiError};

pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// When this implementation of the API last changed.
pub const CHANGESET: &str = "2026-11-22T00:00:00+08:00";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/open311/v2/{tenant}", get(handlers::root))
        .route("/open311/v2/{tenant}/", get(handlers::root))
        .route(
            "/open311/v2/{tenant}/{file}",
            get(handlers::get_collection).post(handlers::post_request),
        )
        .route(
            "/open311/v2/{tenant}/services/{file}",
            get(handlers::get_service),
        )
        .route(
            "/open311/v2/{tenant}/requests/{file}",
            get(handlers::get_request),
        )
        .route(
            "/open311/v2/{tenant}/tokens/{file}",
            get(handlers::get_token),
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// An answer in the spec's error format.
#[derive(Debug)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: Text,
    pub format: Format,
    pub retry_after: Option<u64>,
}

impl Open311Error {
    fn new(status: StatusCode, description: impl Into<Text>, format: Format) -> Self {
        Self {
            status,
            description: description.into(),
            format,
            retry_after: None,
        }
    }

    fn bad(description: impl Into<Text>, format: Format) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description, format)
    }

    fn not_found(description: impl Into<Text>, format: Format) -> Self {
        Self::new(StatusCode::NOT_FOUND, description, format)
    }

    fn from_api(e: ApiError, format: Format) -> Self {
        Self {
            status: e.status,
            description: e.message,
            format,
            retry_after: e.retry_after,
        }
    }

    /// Maps intake's answer; input errors name the Open311 parameter.
    fn from_status(s: &tonic::Status, format: Format) -> Self {
        let p = jiesu_proto::status::problem(s);
        let status = match s.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            _ => return Self::from_api(ApiError::from_status(s), format),
        };
        let description = match &p.field {
            // The service named its own field; name the Open311 parameter.
            Some(field) => {
                let param = params::param_name(field);
                let reason = |message: &str, sep: &str| {
                    let reason = message
                        .strip_prefix(&format!("{field}{sep}"))
                        .unwrap_or(message);
                    format!("{param}{sep}{reason}")
                };
                Text::new(reason(&p.message.zh, "："), reason(&p.message.en, ": "))
            }
            None => p.message,
        };
        Self::new(status, description, format)
    }
}

type Result<T> = std::result::Result<T, Open311Error>;
