//! `/healthz`: liveness of the public port.

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness of the public port: 200 once the gateway can verify tokens.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "No token keys loaded yet", body = Health),
    ),
    security(()),
)]
async fn healthz(State(state): State<AppState>) -> Response {
    if state.verifier.key_count() > 0 {
        Json(Health {
            status: "ok".into(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "no_keys".into(),
            }),
        )
            .into_response()
    }
}
