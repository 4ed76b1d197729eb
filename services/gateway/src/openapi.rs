//! The OpenAPI document's frame: title, tags, the bearer scheme, the
//! security every operation needs unless it says otherwise (`security(())`),
//! and the error responses many operations share, declared once. Each shared
//! response is a reusable response in the document's components that
//! operations refer to; `Authenticated` and `TenantAdmin` are the sets nearly
//! every operation starts from. Answers peculiar to one operation stay with
//! it. The operations themselves come from the handlers' routes.

use utoipa::{
    IntoResponses, Modify, OpenApi, ToResponse,
    openapi::{
        self,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jiesu 接诉即办 API",
        description = "Public API of the Jiesu request-handling platform. Every endpoint but \
                       /healthz and this document needs `Authorization: Bearer <JWT>`. Errors are \
                       `{\"code\",\"message\",\"field\"}`; personal data is masked in every answer. \
                       Every time in this API is UTC (RFC 3339, ending in `Z`); clients show it in \
                       China Standard Time (UTC+8), as notices and Open311 (`+08:00`) do. Levels \
                       count from 1 (the unit) to 4 (the district) everywhere.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    components(
        schemas(Problem),
        responses(
            Unauthorized,
            NotTenantAdmin,
            StaffOnly,
            SupervisorsAndAdmins,
            NotYourGrid,
            NotAllowed,
            InvalidField,
            InvalidQuery,
            RateLimited,
        )
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tickets", description = "Requests (诉求) from intake to dispatch"),
        (name = "reference", description = "Tenant reference data"),
        (name = "notifications", description = "What units and people were told"),
        (name = "knowledge", description = "Knowledge base for direct answers (直接答复) and intake counts"),
        (name = "channels", description = "Registered channels and the signed webhook of a tenant's own platform"),
        (name = "work orders", description = "Work orders (工单): queues, actions, clocks, the SLA policy and the working calendar"),
        (name = "grids", description = "Grids (网格): layers, history (split, merge, as of), pairs, the building registry and locating a point"),
        (name = "grid people", description = "Grid workers, households and key persons (personal data masked, reads recorded)"),
        (name = "duties", description = "Visit and patrol duties, check-ins and compliance"),
        (name = "grid events", description = "Matters found in the grid: closed there or whistled up (吹哨); broadcasts"),
        (name = "operations", description = "Health"),
    )
)]
pub struct ApiDoc;

/// 401 of every operation that takes a token.
#[derive(ToResponse)]
#[response(description = "Missing or invalid token")]
pub struct Unauthorized(pub Problem);

/// 403 of the tenant administrator's operations.
#[derive(ToResponse)]
#[response(description = "Not a tenant admin")]
pub struct NotTenantAdmin(pub Problem);

/// 403 where only staff (not citizens) may call.
#[derive(ToResponse)]
#[response(description = "Staff only")]
pub struct StaffOnly(pub Problem);

/// 403 where only supervisors and tenant admins may call.
#[derive(ToResponse)]
#[response(description = "Supervisors and admins only")]
pub struct SupervisorsAndAdmins(pub Problem);

/// 403 for a grid worker acting outside their grids.
#[derive(ToResponse)]
#[response(description = "Not your grid")]
pub struct NotYourGrid(pub Problem);

/// 403 where the rule depends on the role and the scope together.
#[derive(ToResponse)]
#[response(description = "Not allowed")]
pub struct NotAllowed(pub Problem);

/// 422 of a JSON body.
#[derive(ToResponse)]
#[response(description = "A field is invalid; `field` names it")]
pub struct InvalidField(pub Problem);

/// 422 of a query string.
#[derive(ToResponse)]
#[response(description = "A query parameter is invalid")]
pub struct InvalidQuery(pub Problem);

/// 429 of the rate-limited public endpoints.
#[derive(ToResponse)]
#[response(description = "Rate limited; see Retry-After")]
pub struct RateLimited(pub Problem);

/// What every operation taking a token can answer.
#[derive(IntoResponses)]
pub enum Authenticated {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
}

/// What every operation of the tenant admin can answer.
#[derive(IntoResponses)]
pub enum TenantAdmin {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] NotTenantAdmin),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The served document, once every route has added its operations.
pub fn finish(mut doc: openapi::OpenApi) -> openapi::OpenApi {
    require_bearer_by_default(&mut doc);
    doc
}

/// Writes the document-wide security onto every operation that states none,
/// so a reader (or a generated client) looking at one operation sees its
/// requirement. Public operations state `security(())` and keep it.
fn require_bearer_by_default(doc: &mut openapi::OpenApi) {
    let Some(global) = doc.security.clone() else {
        return;
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
            &mut item.query,
        ]
        .into_iter()
        .flatten()
        .chain(item.additional_operations.values_mut());
        for op in ops {
            op.security.get_or_insert_with(|| global.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::{GatewayConfig, api};

    fn document() -> Value {
        let (_, doc) = api(&GatewayConfig::default()).split_for_parts();
        serde_json::to_value(super::finish(doc)).unwrap()
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_says_times_are_utc_and_how_levels_count() {
        let doc = document();
        let about = doc["info"]["description"].as_str().unwrap_or_default();
        assert!(about.contains("UTC") && about.contains("UTC+8"), "{about}");
        assert!(
            about.contains("1 (the unit) to 4 (the district)"),
            "{about}"
        );
        let whistle = &doc["components"]["schemas"]["WhistleBody"]["properties"]["level"];
        assert_eq!(whistle["minimum"], 2, "{whistle}");
        assert_eq!(whistle["maximum"], 4, "{whistle}");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.contains(&"#/components/responses/Unauthorized"));
        for r in found {
            let target = r
                .trim_start_matches("#/")
                .split('/')
                .fold(&doc, |v, key| &v[key]);
            assert!(target.is_object(), "{r} points nowhere");
        }
    }

    #[test]
    fn only_public_operations_opt_out_of_the_bearer_token() {
        let doc = document();
        assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
        let mut public = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                match op["security"].as_array().map(Vec::as_slice) {
                    Some([req]) if req == &serde_json::json!({"bearer": []}) => {}
                    Some([req]) if req == &serde_json::json!({}) => {
                        public.push(format!("{method} {path}"))
                    }
                    other => panic!("{method} {path}: security {other:?}"),
                }
            }
        }
        public.sort();
        assert_eq!(
            public,
            [
                "get /api/v1/track",
                "get /healthz",
                "post /api/v1/channels/{id}/tickets"
            ]
        );
    }
}
