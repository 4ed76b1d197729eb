//! The OpenAPI document's frame: title, tags, the bearer scheme, the
//! security every operation needs unless it says otherwise (`security(())`),
//! and the error responses many operations share, declared once. Each shared
//! response is a reusable response in the document's components that
//! operations refer to; `Authenticated` and `TenantAdmin` are the sets nearly
//! every operation starts from, `JsonInput` and `TextInput` those of a body.
//! [`finish`] writes onto every operation what the machinery answers for it
//! (the `422` of a parameter, the `503`/`504` of asking a service). Answers
//! peculiar to one operation stay with it. The operations themselves come
//! from the handlers' routes. `make test` holds the served document to the
//! truth with a fuzzer (decision 0029).

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
                       `{\"code\",\"message\",\"field\"}`: `message` is in Chinese (zh-CN) unless \
                       the request sends `Accept-Language: en` (or `en-US`, ...), then in English; \
                       `code` and `field` never change with the language (Open311 error \
                       descriptions follow the same rule). Personal data is masked in every answer. \
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
            InvalidParameter,
            MalformedJson,
            BodyTooLarge,
            UnsupportedMediaType,
            RateLimited,
            Unavailable,
            TimedOut,
        )
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tickets", description = "Requests (诉求) from intake to dispatch"),
        (name = "reference", description = "Tenant reference data"),
        (name = "notifications", description = "What units and people were told"),
        (name = "evaluation", description = "Callbacks (回访), the 三率 and rankings, exclusions, formulas"),
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

/// 422 of a path or query parameter: every operation taking one can answer
/// it (the handlers check formats; `guard::parameters` refuses NUL and
/// paths that are not UTF-8).
#[derive(ToResponse)]
#[response(description = "A path or query parameter is invalid; `field` names it")]
pub struct InvalidParameter(pub Problem);

/// 400 of a JSON body that does not parse.
#[derive(ToResponse)]
#[response(description = "The body is not JSON (malformed, not UTF-8 or nested too deeply)")]
pub struct MalformedJson(pub Problem);

/// 413 of a body over the operation's limit.
#[derive(ToResponse)]
#[response(description = "The body is larger than this operation accepts")]
pub struct BodyTooLarge(pub Problem);

/// 415 of a body sent with another `Content-Type` than the one documented.
#[derive(ToResponse)]
#[response(description = "The body's Content-Type is not the one this operation takes")]
pub struct UnsupportedMediaType(pub Problem);

/// 429 of the rate-limited public endpoints.
#[derive(ToResponse)]
#[response(
    description = "Rate limited; see Retry-After",
    headers(("Retry-After" = u64, description = "Seconds to wait"))
)]
pub struct RateLimited(pub Problem);

/// 503 of every operation that asks a service: it is down, or at capacity.
#[derive(ToResponse)]
#[response(
    description = "A service is unavailable or at capacity; retry after Retry-After seconds (creates with the same Idempotency-Key)",
    headers(("Retry-After" = u64, description = "Seconds to wait"))
)]
pub struct Unavailable(pub Problem);

/// 504 of every operation that asks a service: its deadline passed.
#[derive(ToResponse)]
#[response(description = "A service did not answer before the deadline")]
pub struct TimedOut(pub Problem);

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

/// What every operation taking a JSON body can answer because of it
/// (`extract::JsonBody`): malformed JSON, too large, not JSON, a field
/// missing, unknown, of the wrong type or carrying NUL. An operation that
/// says more about its 422 lists it after this set.
#[derive(IntoResponses)]
pub enum JsonInput {
    #[response(status = 400)]
    Malformed(#[ref_response] MalformedJson),
    #[response(status = 413)]
    TooLarge(#[ref_response] BodyTooLarge),
    #[response(status = 415)]
    NotJson(#[ref_response] UnsupportedMediaType),
    #[response(status = 422)]
    Invalid(#[ref_response] InvalidField),
}

/// What every operation taking a text file (CSV, GeoJSON) can answer
/// because of it (`extract::text_body`): too large, another media type, not
/// UTF-8 or carrying NUL. The operation lists its own 422 after this set.
#[derive(IntoResponses)]
pub enum TextInput {
    #[response(status = 413)]
    TooLarge(#[ref_response] BodyTooLarge),
    #[response(status = 415)]
    WrongType(#[ref_response] UnsupportedMediaType),
    #[response(status = 422)]
    Invalid(#[ref_response] InvalidField),
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
    add_shared_answers(&mut doc);
    doc
}

/// Every operation of an item, mutably.
fn operations_mut(
    item: &mut openapi::PathItem,
) -> impl Iterator<Item = &mut openapi::path::Operation> {
    [
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
    .chain(item.additional_operations.values_mut())
}

/// The answers an operation can give because of what every request goes
/// through, not because of its handler, written onto each operation that
/// does not describe them itself: `422` where it takes a path or query
/// parameter (`guard::parameters` and the handlers' own checks), and `503`
/// and `504` where it asks a service (every operation but `/healthz`, which
/// says what it answers). Keeping them here keeps them from being forgotten
/// on a new route.
fn add_shared_answers(doc: &mut openapi::OpenApi) {
    use openapi::{Ref, RefOr, path::ParameterIn};
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in operations_mut(item) {
            let takes_parameters = op.parameters.iter().flatten().any(|p| match p {
                RefOr::T(p) => matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query),
                RefOr::Ref(_) => true,
            });
            let mut add = |status: &str, name: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            };
            if takes_parameters {
                add("422", "InvalidParameter");
            }
            if path != "/healthz" {
                add("503", "Unavailable");
                add("504", "TimedOut");
            }
        }
    }
}

/// Writes the document-wide security onto every operation that states none,
/// so a reader (or a generated client) looking at one operation sees its
/// requirement. Public operations state `security(())` and keep it.
fn require_bearer_by_default(doc: &mut openapi::OpenApi) {
    let Some(global) = doc.security.clone() else {
        return;
    };
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
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
                "get /api/v1/track/invitations/{token}",
                "get /healthz",
                "post /api/v1/channels/{id}/tickets",
                "post /api/v1/track/invitations/{token}/rating",
                "post /api/v1/track/rating"
            ]
        );
    }
    #[test]
    fn every_operation_documents_what_the_machinery_answers() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let has = |status: &str| op["responses"].get(status).is_some();
                let takes_params = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" || p["in"] == "query"));
                if takes_params {
                    assert!(has("422"), "{method} {path}: no 422");
                }
                if path != "/healthz" {
                    assert!(has("503") && has("504"), "{method} {path}: no 503/504");
                }
                for (kind, statuses) in [
                    ("application/json", &["400", "413", "415", "422"][..]),
                    ("text/csv", &["413", "415", "422"][..]),
                ] {
                    let body = &op["requestBody"]["content"][kind];
                    // The signed webhook and the category import hand their
                    // bytes to intake, which parses them (422, not 400).
                    let raw = [
                        "/api/v1/channels/{id}/tickets",
                        "/api/v1/admin/categories/import",
                    ];
                    if body.is_object()
                        && (kind != "application/json" || !raw.contains(&path.as_str()))
                    {
                        for st in statuses {
                            assert!(has(st), "{method} {path}: {kind} body, no {st}");
                        }
                    }
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["name"] == "dry_run" {
                        assert_eq!(p["in"], "query", "{method} {path}");
                    }
                }
            }
        }
    }

    #[test]
    fn exports_declare_what_they_send() {
        let doc = document();
        let ok = |path: &str| doc["paths"][path]["get"]["responses"]["200"]["content"].clone();
        let grids = ok("/api/v1/admin/grids");
        assert_eq!(
            grids["application/geo+json"]["schema"]["$ref"],
            "#/components/schemas/GridLayer"
        );
        let categories = ok("/api/v1/admin/categories/export");
        assert_eq!(categories["application/json"]["schema"]["type"], "array");
        assert_eq!(categories["text/csv"]["schema"]["type"], "string");
    }
}
