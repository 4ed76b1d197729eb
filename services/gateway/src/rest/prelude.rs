//! The vocabulary every resource module speaks, imported once with
//! `use super::prelude::*`: axum's extractors and answers, the caller and
//! body extractors, the error body, the shared responses, and the derives
//! that describe a type in the document.

pub use axum::{
    Json,
    extract::{DefaultBodyLimit, Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
pub use chrono::{DateTime, Utc};
pub use jiesu_common::{Lang, Text, tr};
pub use serde::{Deserialize, Serialize};
pub use utoipa::{IntoParams, ToSchema};
pub use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

pub use crate::openapi::{
    Authenticated, InvalidField, InvalidQuery, JsonInput, NotAllowed, NotYourGrid, RateLimited,
    StaffOnly, SupervisorsAndAdmins, TenantAdmin, TextInput,
};
pub use crate::{
    AppState, GatewayConfig,
    error::{ApiError, Problem, invalid_query},
    extract::{Caller, JsonBody, RawBody, text_body},
};
