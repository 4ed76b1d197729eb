//! Open311 GeoReport v2, one base URL per tenant: `/open311/v2/{tenant}/`.
//!
//! Services are the tenant's leaf categories; their attributes are the
//! category's questions. `POST requests` needs the api_key of an Open311
//! channel registered by the tenant admin; reads are public and show no
//! personal data. Every answer exists as `.json` and `.xml`; errors use the
//! spec's `[{"code","description"}]` / `<errors>` shape with 400, 403, 404
//! (and 429, 503 where the platform needs them). Datetimes carry +08:00.
//! `service_request_id` is the tracking number (受理编号).

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use jiesu_proto::{
    intake::{
        AttributeValue, Citizen, CreateTicketRequest, CreateWithApiKeyRequest, ListServicesRequest,
        ListServicesResponse, Location, PublicRequest, ResolveTokenRequest, SearchRequestsRequest,
    },
    time::{from_timestamp, to_timestamp},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::{
    AppState,
    backend::{public_request, with_retry},
    error::ApiError,
    extract::read_body,
    ratelimit::Peer,
};

pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// When this implementation of the API last changed.
pub const CHANGESET: &str = "2026-11-22T00:00:00+08:00";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// An answer in the spec's error format.
#[derive(Debug)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: String,
    pub format: Format,
    pub retry_after: Option<u64>,
}

impl Open311Error {
    fn new(status: StatusCode, description: impl Into<String>, format: Format) -> Self {
        Self {
            status,
            description: description.into(),
            format,
            retry_after: None,
        }
    }

    fn bad(description: impl Into<String>, format: Format) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description, format)
    }

    fn from_api(e: ApiError, format: Format) -> Self {
        Self {
            status: e.status,
            description: e.problem.message,
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
            Some(field) => {
                let param = param_name(field);
                let reason = p
                    .message
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&p.message);
                format!("{param}: {reason}")
            }
            None => p.message,
        };
        Self::new(status, description, format)
    }
}

/// Our field path → the Open311 parameter a client sent.
fn param_name(field: &str) -> String {
    match field {
        "content" => "description".into(),
        "category" => "service_code".into(),
        "location.lat" => "lat".into(),
        "location.lon" => "long".into(),
        "location" => "lat/long/address_string".into(),
        "location.address" => "address_string".into(),
        "citizen.phone" => "phone".into(),
        "citizen.name" => "first_name/last_name".into(),
        "citizen.id_number" => "id_number".into(),
        "citizen" => "phone".into(),
        f => match f.strip_prefix("attributes.") {
            Some(code) => format!("attribute[{code}]"),
            None => f.to_owned(),
        },
    }
}

impl IntoResponse for Open311Error {
    fn into_response(self) -> Response {
        let doc = Node::List(
            "error",
            vec![Node::obj([
                ("code", Node::Int(i64::from(self.status.as_u16()))),
                ("description", Node::Str(self.description)),
            ])],
        );
        let mut resp = render(self.format, "errors", doc, self.status);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

type Result<T> = std::result::Result<T, Open311Error>;

/// A document rendered as JSON or XML.
#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    /// A list whose XML items are called by the given name.
    List(&'static str, Vec<Node>),
    Obj(Vec<(&'static str, Node)>),
}

impl Node {
    fn obj<const N: usize>(fields: [(&'static str, Node); N]) -> Node {
        Node::Obj(fields.into())
    }

    fn opt_str(s: &str) -> Node {
        if s.is_empty() {
            Node::Null
        } else {
            Node::Str(s.to_owned())
        }
    }

    fn opt_num(v: Option<f64>) -> Node {
        v.map(Node::Num).unwrap_or(Node::Null)
    }

    fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(n) => json!(n),
            Node::Num(n) => json!(n),
            Node::Str(s) => Value::String(s.clone()),
            Node::List(_, items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }

    fn write_xml(&self, name: &str, out: &mut String) {
        match self {
            Node::Null => {
                out.push('<');
                out.push_str(name);
                out.push_str("/>");
            }
            Node::Bool(b) => element(out, name, if *b { "true" } else { "false" }),
            Node::Int(n) => element(out, name, &n.to_string()),
            Node::Num(n) => element(out, name, &n.to_string()),
            Node::Str(s) => element(out, name, &escape(s)),
            Node::List(item, items) => {
                out.push_str(&format!("<{name}>"));
                for i in items {
                    i.write_xml(item, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            Node::Obj(fields) => {
                out.push_str(&format!("<{name}>"));
                for (k, v) in fields {
                    v.write_xml(k, out);
                }
                out.push_str(&format!("</{name}>"));
            }
        }
    }
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!("<{name}>{text}</{name}>"));
}

/// XML 1.0 text: the five entities escaped, characters XML cannot carry
/// dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn render(format: Format, root: &str, doc: Node, status: StatusCode) -> Response {
    match format {
        Format::Json => {
            let body = doc.to_json().to_string();
            (
                status,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Format::Xml => {
            let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            doc.write_xml(root, &mut body);
            (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                body,
            )
                .into_response()
        }
    }
}

/// `services.json` → (`services`, Json). The format decides how errors
/// about everything else are written, so it is read first.
fn split_file(file: &str) -> Result<(&str, Format)> {
    let (stem, ext) = file.rsplit_once('.').ok_or_else(|| {
        Open311Error::new(
            StatusCode::NOT_FOUND,
            "add the format to the path: .json or .xml",
            Format::Json,
        )
    })?;
    let format = match ext.to_ascii_lowercase().as_str() {
        "json" => Format::Json,
        "xml" => Format::Xml,
        _ => {
            return Err(Open311Error::new(
                StatusCode::NOT_FOUND,
                "format must be json or xml",
                Format::Json,
            ));
        }
    };
    if stem.is_empty() {
        return Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            "not found",
            format,
        ));
    }
    Ok((stem, format))
}

/// Parameters of a query string or form body, in order.
fn params(raw: &[u8], format: Format) -> Result<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'))
    {
        let name: String = k.chars().filter(|c| *c != '\u{FFFD}').take(64).collect();
        return Err(Open311Error::bad(
            format!("{name}: is not valid UTF-8"),
            format,
        ));
    }
    if pairs.len() > 200 {
        return Err(Open311Error::bad("too many parameters", format));
    }
    Ok(pairs)
}

fn first<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn text(p: &[(String, String)], name: &str) -> String {
    first(p, name).unwrap_or_default().to_owned()
}

fn check_tenant(tenant: &str, p: &[(String, String)], format: Format) -> Result<()> {
    let known_shape =
        (6..=12).contains(&tenant.len()) && tenant.bytes().all(|b| b.is_ascii_digit());
    let jurisdiction_ok = first(p, "jurisdiction_id")
        .map(|j| j.trim().is_empty() || j.trim() == tenant)
        .unwrap_or(true);
    if !known_shape || !jurisdiction_ok {
        return Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            "jurisdiction_id not found",
            format,
        ));
    }
    Ok(())
}

fn datetime(at: Option<DateTime<Utc>>) -> Node {
    at.map(|t| Node::Str(jiesu_common::time::iso_china(t)))
        .unwrap_or(Node::Null)
}

/// ISO 8601 with a zone, or a bare date meaning that day in China.
fn parse_date(name: &str, raw: &str, format: Format) -> Result<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(jiesu_common::time::china_midnight(d));
    }
    Err(Open311Error::bad(
        format!("{name}: must be ISO 8601 with a time zone, e.g. 2026-11-01T00:00:00+08:00"),
        format,
    ))
}

async fn limit_ip(state: &AppState, headers: &HeaderMap, peer: Peer, format: Format) -> Result<()> {
    state
        .limits
        .check_ip(headers, peer)
        .map_err(|e| Open311Error::from_api(e, format))
}

/// What every GET does first: the format from the file name (it decides
/// how errors are written), the per-IP limit, the query and the
/// jurisdiction.
async fn read_request<'f>(
    state: &AppState,
    headers: &HeaderMap,
    peer: Peer,
    tenant: &str,
    file: &'f str,
    query: Option<String>,
) -> Result<(&'f str, Format, Vec<(String, String)>)> {
    let (stem, format) = split_file(file)?;
    limit_ip(state, headers, peer, format).await?;
    let p = params(query.unwrap_or_default().as_bytes(), format)?;
    check_tenant(tenant, &p, format)?;
    Ok((stem, format, p))
}

async fn services(state: &AppState, tenant: &str, format: Format) -> Result<ListServicesResponse> {
    with_retry(state.backends.retries, || {
        let mut client = state.backends.public.clone();
        let req = public_request(ListServicesRequest {
            tenant: tenant.to_owned(),
        });
        async move { client.list_services(req).await }
    })
    .await
    .map(|r| r.into_inner())
    .map_err(|s| {
        if s.code() == Code::NotFound {
            Open311Error::new(StatusCode::NOT_FOUND, "jurisdiction_id not found", format)
        } else {
            Open311Error::from_status(&s, format)
        }
    })
}

fn base_url(state: &AppState, headers: &HeaderMap, tenant: &str) -> String {
    let base = if state.cfg.public_url.is_empty() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("http://{host}")
    } else {
        state.cfg.public_url.trim_end_matches('/').to_owned()
    };
    format!("{base}/open311/v2/{tenant}")
}

fn discovery(state: &AppState, headers: &HeaderMap, tenant: &str) -> Node {
    Node::obj([
        ("changeset", Node::Str(CHANGESET.into())),
        ("contact", Node::Str("12345政务服务便民热线".into())),
        (
            "key_service",
            Node::Str("api_key 由本区县租户管理员在“渠道管理”中登记 Open311 渠道后签发".into()),
        ),
        (
            "endpoints",
            Node::List(
                "endpoint",
                vec![Node::obj([
                    ("specification", Node::Str(SPECIFICATION.into())),
                    ("url", Node::Str(base_url(state, headers, tenant))),
                    ("changeset", Node::Str(CHANGESET.into())),
                    ("type", Node::Str("production".into())),
                    (
                        "formats",
                        Node::List(
                            "format",
                            vec![
                                Node::Str("text/xml".into()),
                                Node::Str("application/json".into()),
                            ],
                        ),
                    ),
                ])],
            ),
        ),
    ])
}

/// `GET /open311/v2/{tenant}/` and `/open311/v2/{tenant}`: discovery (JSON).
pub async fn root(
    State(state): State<AppState>,
    peer: Peer,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let format = Format::Json;
    limit_ip(&state, &headers, peer, format).await?;
    let p = params(query.unwrap_or_default().as_bytes(), format)?;
    check_tenant(&tenant, &p, format)?;
    services(&state, &tenant, format).await?;
    Ok(render(
        format,
        "discovery",
        discovery(&state, &headers, &tenant),
        StatusCode::OK,
    ))
}

/// `GET /open311/v2/{tenant}/{discovery|services|requests}.{format}`
pub async fn get_collection(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (stem, format, p) = read_request(&state, &headers, peer, &tenant, &file, query).await?;
    match stem {
        "discovery" => {
            services(&state, &tenant, format).await?;
            Ok(render(
                format,
                "discovery",
                discovery(&state, &headers, &tenant),
                StatusCode::OK,
            ))
        }
        "services" => {
            let list = services(&state, &tenant, format).await?;
            let items = list
                .services
                .iter()
                .map(|c| {
                    Node::obj([
                        ("service_code", Node::Str(c.code.clone())),
                        ("service_name", Node::Str(c.name.clone())),
                        ("description", Node::opt_str(&c.description)),
                        ("metadata", Node::Bool(!c.attributes.is_empty())),
                        ("type", Node::Str("realtime".into())),
                        ("keywords", Node::opt_str(&c.keywords)),
                        (
                            "group",
                            list.group_names
                                .get(&c.parent_code)
                                .map(|g| Node::Str(g.clone()))
                                .unwrap_or(Node::Null),
                        ),
                    ])
                })
                .collect();
            Ok(render(
                format,
                "services",
                Node::List("service", items),
                StatusCode::OK,
            ))
        }
        "requests" => search(&state, &tenant, &p, format).await,
        _ => Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            "not found",
            format,
        )),
    }
}

/// `GET /open311/v2/{tenant}/services/{service_code}.{format}`
pub async fn get_service(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (code, format, _) = read_request(&state, &headers, peer, &tenant, &file, query).await?;
    let list = services(&state, &tenant, format).await?;
    let service = list
        .services
        .iter()
        .find(|c| c.code == code)
        .ok_or_else(|| {
            Open311Error::new(StatusCode::NOT_FOUND, "service_code not found", format)
        })?;
    let mut attributes = service.attributes.clone();
    attributes.sort_by_key(|a| a.order);
    let attrs = attributes
        .iter()
        .map(|a| {
            Node::obj([
                ("variable", Node::Bool(true)),
                ("code", Node::Str(a.code.clone())),
                ("datatype", Node::Str(a.datatype.clone())),
                ("required", Node::Bool(a.required)),
                (
                    "datatype_description",
                    Node::opt_str(&a.datatype_description),
                ),
                ("order", Node::Int(i64::from(a.order))),
                ("description", Node::Str(a.description.clone())),
                (
                    "values",
                    Node::List(
                        "value",
                        a.values
                            .iter()
                            .map(|v| {
                                Node::obj([
                                    ("key", Node::Str(v.key.clone())),
                                    ("name", Node::Str(v.name.clone())),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let doc = Node::obj([
        ("service_code", Node::Str(service.code.clone())),
        ("attributes", Node::List("attribute", attrs)),
    ]);
    Ok(render(format, "service_definition", doc, StatusCode::OK))
}

fn request_node(r: &PublicRequest) -> Node {
    Node::obj([
        ("service_request_id", Node::Str(r.tracking_no.clone())),
        ("status", Node::Str(r.status.clone())),
        ("status_notes", Node::opt_str(&r.status_notes)),
        ("service_name", Node::opt_str(&r.service_name)),
        ("service_code", Node::Str(r.service_code.clone())),
        ("description", Node::opt_str(&r.description)),
        ("agency_responsible", Node::Null),
        ("service_notice", Node::Null),
        (
            "requested_datetime",
            datetime(r.requested_at.as_ref().and_then(from_timestamp)),
        ),
        (
            "updated_datetime",
            datetime(r.updated_at.as_ref().and_then(from_timestamp)),
        ),
        ("expected_datetime", Node::Null),
        ("address", Node::opt_str(&r.address)),
        ("address_id", Node::Null),
        ("zipcode", Node::Null),
        ("lat", Node::opt_num(r.lat)),
        ("long", Node::opt_num(r.lon)),
        ("media_url", Node::opt_str(&r.media_url)),
    ])
}

fn int_param(p: &[(String, String)], name: &str, format: Format) -> Result<i32> {
    match first(p, name).map(str::trim) {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<i32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Open311Error::bad(format!("{name}: must be a positive integer"), format)
        }),
    }
}

fn list_param(p: &[(String, String)], name: &str) -> Vec<String> {
    p.iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

async fn search(
    state: &AppState,
    tenant: &str,
    p: &[(String, String)],
    format: Format,
) -> Result<Response> {
    let statuses = list_param(p, "status");
    let status = match (
        statuses.iter().any(|s| s == "open"),
        statuses.iter().any(|s| s == "closed"),
    ) {
        _ if statuses.iter().any(|s| s != "open" && s != "closed") => {
            return Err(Open311Error::bad("status: must be open or closed", format));
        }
        (true, false) => "open",
        (false, true) => "closed",
        _ => "",
    };
    let start = first(p, "start_date")
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse_date("start_date", v, format))
        .transpose()?;
    let end = first(p, "end_date")
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse_date("end_date", v, format))
        .transpose()?;
    let msg = SearchRequestsRequest {
        tenant: tenant.to_owned(),
        ids: list_param(p, "service_request_id"),
        service_codes: list_param(p, "service_code"),
        start: start.map(to_timestamp),
        end: end.map(to_timestamp),
        status: status.into(),
        page: int_param(p, "page", format)?,
        page_size: int_param(p, "page_size", format)?,
    };
    let found = search_call(state, msg, format).await?;
    let items = found.iter().map(request_node).collect();
    Ok(render(
        format,
        "service_requests",
        Node::List("request", items),
        StatusCode::OK,
    ))
}

async fn search_call(
    state: &AppState,
    msg: SearchRequestsRequest,
    format: Format,
) -> Result<Vec<PublicRequest>> {
    with_retry(state.backends.retries, || {
        let mut client = state.backends.public.clone();
        let req = public_request(msg.clone());
        async move { client.search_requests(req).await }
    })
    .await
    .map(|r| r.into_inner().requests)
    .map_err(|s| {
        if s.code() == Code::NotFound {
            Open311Error::new(StatusCode::NOT_FOUND, "jurisdiction_id not found", format)
        } else {
            Open311Error::from_status(&s, format)
        }
    })
}

/// `GET /open311/v2/{tenant}/requests/{service_request_id}.{format}`
pub async fn get_request(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (id, format, _) = read_request(&state, &headers, peer, &tenant, &file, query).await?;
    let found = search_call(
        &state,
        SearchRequestsRequest {
            tenant: tenant.clone(),
            ids: vec![id.to_owned()],
            ..Default::default()
        },
        format,
    )
    .await?;
    if found.is_empty() {
        return Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            "service_request_id not found",
            format,
        ));
    }
    let items = found.iter().map(request_node).collect();
    Ok(render(
        format,
        "service_requests",
        Node::List("request", items),
        StatusCode::OK,
    ))
}

/// `GET /open311/v2/{tenant}/tokens/{token}.{format}`
pub async fn get_token(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (token, format, _) = read_request(&state, &headers, peer, &tenant, &file, query).await?;
    let resolved = with_retry(state.backends.retries, || {
        let mut client = state.backends.public.clone();
        let req = public_request(ResolveTokenRequest {
            tenant: tenant.clone(),
            token: token.to_owned(),
        });
        async move { client.resolve_token(req).await }
    })
    .await
    .map_err(|s| {
        if s.code() == Code::NotFound {
            Open311Error::new(StatusCode::NOT_FOUND, "token not found", format)
        } else {
            Open311Error::from_status(&s, format)
        }
    })?
    .into_inner();
    let doc = Node::List(
        "request",
        vec![Node::obj([
            ("service_request_id", Node::Str(resolved.tracking_no)),
            ("token", Node::Str(token.to_owned())),
        ])],
    );
    Ok(render(format, "service_requests", doc, StatusCode::OK))
}

fn flag(p: &[(String, String)], name: &str, format: Format) -> Result<bool> {
    match first(p, name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "" | "false" | "0" => Ok(false),
            "true" | "1" => Ok(true),
            _ => Err(Open311Error::bad(
                format!("{name}: must be true or false"),
                format,
            )),
        },
    }
}

fn coordinate(p: &[(String, String)], name: &str, format: Format) -> Result<Option<f64>> {
    match first(p, name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| Open311Error::bad(format!("{name}: must be a decimal number"), format)),
    }
}

/// `attribute[code]=v` and `attribute[code][]=v1&attribute[code][]=v2`.
fn attributes(p: &[(String, String)], format: Format) -> Result<Vec<AttributeValue>> {
    let mut out: Vec<AttributeValue> = Vec::new();
    for (k, v) in p {
        let Some(rest) = k.strip_prefix("attribute[") else {
            continue;
        };
        let code = rest
            .strip_suffix("][]")
            .or_else(|| rest.strip_suffix(']'))
            .filter(|c| !c.is_empty() && !c.contains(['[', ']']))
            .ok_or_else(|| Open311Error::bad("attribute: write attribute[code]=value", format))?;
        match out.iter_mut().find(|a| a.code == code) {
            Some(a) => a.values.push(v.clone()),
            None => out.push(AttributeValue {
                code: code.to_owned(),
                values: vec![v.clone()],
            }),
        }
    }
    Ok(out)
}

/// `POST /open311/v2/{tenant}/requests.{format}` (form-encoded).
pub async fn post_request(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response> {
    let (stem, format) = split_file(&file)?;
    if stem != "requests" {
        return Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            "not found",
            format,
        ));
    }
    limit_ip(&state, &headers, peer, format).await?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Open311Error::bad(
            "send the request as application/x-www-form-urlencoded",
            format,
        ));
    }
    let body = read_body(req, &state)
        .await
        .map_err(|e| Open311Error::from_api(e, format))?;
    // Parameters in the body win over the same ones in the query string.
    let mut p = params(&body, format)?;
    p.extend(params(query.unwrap_or_default().as_bytes(), format)?);
    check_tenant(&tenant, &p, format)?;
    let api_key = text(&p, "api_key");
    let key_id: String = Sha256::digest(api_key.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    state
        .limits
        .check_channel(&format!("open311:{key_id}"))
        .map_err(|e| Open311Error::from_api(e, format))?;

    let lat = coordinate(&p, "lat", format)?;
    let lon = coordinate(&p, "long", format)?;
    let name = [text(&p, "last_name"), text(&p, "first_name")]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| format!("gw-{}", uuid::Uuid::now_v7()));
    let msg = CreateWithApiKeyRequest {
        tenant: tenant.clone(),
        api_key,
        ticket: Some(CreateTicketRequest {
            idempotency_key: key,
            channel: String::new(),
            nature: text(&p, "nature"),
            category: text(&p, "service_code"),
            content: text(&p, "description"),
            location: Some(Location {
                lat,
                lon,
                address: text(&p, "address_string"),
                region_code: String::new(),
            }),
            citizen: Some(Citizen {
                name,
                phone: text(&p, "phone"),
                id_number: String::new(),
            }),
            urgency: text(&p, "urgency"),
            kind: text(&p, "kind"),
            confidential: flag(&p, "confidential", format)?,
            attributes: attributes(&p, format)?,
            direct_answer: None,
        }),
        account_id: text(&p, "account_id"),
        device_id: text(&p, "device_id"),
        email: text(&p, "email"),
        media_url: text(&p, "media_url"),
    };
    let created = with_retry(state.backends.retries, || {
        let mut client = state.backends.public.clone();
        let req = public_request(msg.clone());
        async move { client.create_with_api_key(req).await }
    })
    .await
    .map_err(|s| Open311Error::from_status(&s, format))?
    .into_inner();
    let doc = Node::List(
        "request",
        vec![Node::obj([
            ("service_request_id", Node::Str(created.tracking_no)),
            ("token", Node::Str(created.token)),
            ("service_notice", Node::opt_str(&created.service_notice)),
            ("account_id", Node::opt_str(&created.account_id)),
        ])],
    );
    Ok(render(format, "service_requests", doc, StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_writes_nulls() {
        let doc = Node::List(
            "request",
            vec![Node::obj([
                ("a", Node::Str("<b> & \"c\" '\u{1}'".into())),
                ("n", Node::Null),
                ("x", Node::Num(36.5)),
            ])],
        );
        let mut out = String::new();
        doc.write_xml("service_requests", &mut out);
        assert_eq!(
            out,
            "<service_requests><request><a>&lt;b&gt; &amp; &quot;c&quot; &apos;&apos;</a><n/><x>36.5</x></request></service_requests>"
        );
        assert_eq!(
            doc.to_json(),
            json!([{"a": "<b> & \"c\" '\u{1}'", "n": null, "x": 36.5}])
        );
    }

    #[test]
    fn files_and_params() {
        assert_eq!(
            split_file("services.json").ok().map(|f| f.1),
            Some(Format::Json)
        );
        assert_eq!(split_file("CG02.XML").ok().map(|f| f.1), Some(Format::Xml));
        assert!(split_file("services").is_err());
        assert!(split_file("services.csv").is_err());
        assert_eq!(
            param_name("attributes.noise_period"),
            "attribute[noise_period]"
        );
        assert_eq!(param_name("location.lon"), "long");
        let p = vec![
            ("attribute[source][]".to_owned(), "shop".to_owned()),
            ("attribute[source][]".to_owned(), "renovation".to_owned()),
            ("attribute[noise_period]".to_owned(), "night".to_owned()),
        ];
        let a = attributes(&p, Format::Json).ok().unwrap_or_default();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].values, ["shop", "renovation"]);
    }
}
