//! The Open311 endpoints: each reads its parameters, asks intake's public
//! service (reads retried while intake cannot be reached; a create carries
//! an idempotency key, so it is retried too) and renders the answer.

use axum::{
    extract::{Path, RawQuery, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use jiesu_common::tr;
use jiesu_proto::intake::{
    ListServicesRequest, ListServicesResponse, PublicRequest, ResolveTokenRequest,
    SearchRequestsRequest,
};
use sha2::{Digest, Sha256};
use tonic::Code;

use super::{
    Format, Open311Error, Result,
    params::{self, Params},
    render::{self, Node, render, service_requests},
};
use crate::{AppState, extract::read_body, ratelimit::Peer};

fn limit_ip(state: &AppState, headers: &HeaderMap, peer: Peer, format: Format) -> Result<()> {
    state
        .limits
        .check_ip(headers, peer)
        .map_err(|e| Open311Error::from_api(e, format))
}

/// What every GET does first: the format from the file name (it decides
/// how errors are written), the per-IP limit, the query and the
/// jurisdiction.
fn read_request<'f>(
    state: &AppState,
    headers: &HeaderMap,
    peer: Peer,
    tenant: &str,
    file: &'f str,
    query: Option<String>,
) -> Result<(&'f str, Format, Params)> {
    let (stem, format) = params::split_file(file)?;
    limit_ip(state, headers, peer, format)?;
    let p = params::parse(query.unwrap_or_default().as_bytes(), format)?;
    params::check_tenant(tenant, &p, format)?;
    Ok((stem, format, p))
}

/// Intake's `NotFound` for a tenant's reads means the jurisdiction.
fn jurisdiction_error(s: &tonic::Status, format: Format) -> Open311Error {
    if s.code() == Code::NotFound {
        Open311Error::not_found(
            tr!("未找到 jurisdiction_id", "jurisdiction_id not found"),
            format,
        )
    } else {
        Open311Error::from_status(s, format)
    }
}

async fn services(state: &AppState, tenant: &str, format: Format) -> Result<ListServicesResponse> {
    let msg = ListServicesRequest {
        tenant: tenant.to_owned(),
    };
    state
        .public()
        .retried(msg, async |mut c, r| c.list_services(r).await)
        .await
        .map_err(|s| jurisdiction_error(&s, format))
}

async fn search(
    state: &AppState,
    msg: SearchRequestsRequest,
    format: Format,
) -> Result<Vec<PublicRequest>> {
    state
        .public()
        .retried(msg, async |mut c, r| c.search_requests(r).await)
        .await
        .map(|r| r.requests)
        .map_err(|s| jurisdiction_error(&s, format))
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

/// The discovery document, once intake knows the jurisdiction.
async fn discovery(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &str,
    format: Format,
) -> Result<Response> {
    services(state, tenant, format).await?;
    let doc = render::discovery(base_url(state, headers, tenant));
    Ok(render(format, "discovery", doc, StatusCode::OK))
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
    limit_ip(&state, &headers, peer, format)?;
    let p = params::parse(query.unwrap_or_default().as_bytes(), format)?;
    params::check_tenant(&tenant, &p, format)?;
    discovery(&state, &headers, &tenant, format).await
}

/// `GET /open311/v2/{tenant}/{discovery|services|requests}.{format}`
pub async fn get_collection(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (stem, format, p) = read_request(&state, &headers, peer, &tenant, &file, query)?;
    match stem {
        "discovery" => discovery(&state, &headers, &tenant, format).await,
        "services" => {
            let list = services(&state, &tenant, format).await?;
            let items = list
                .services
                .iter()
                .map(|c| render::service(c, list.group_names.get(&c.parent_code)))
                .collect();
            Ok(render(
                format,
                "services",
                Node::List("service", items),
                StatusCode::OK,
            ))
        }
        "requests" => {
            let msg = params::search_request(&tenant, &p, format)?;
            let found = search(&state, msg, format).await?;
            Ok(service_requests(
                format,
                found.iter().map(render::request).collect(),
            ))
        }
        _ => Err(Open311Error::not_found(tr!("未找到", "not found"), format)),
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
    let (code, format, _) = read_request(&state, &headers, peer, &tenant, &file, query)?;
    let list = services(&state, &tenant, format).await?;
    let service = list
        .services
        .iter()
        .find(|c| c.code == code)
        .ok_or_else(|| {
            Open311Error::not_found(tr!("未找到 service_code", "service_code not found"), format)
        })?;
    let doc = render::service_definition(service);
    Ok(render(format, "service_definition", doc, StatusCode::OK))
}

/// `GET /open311/v2/{tenant}/requests/{service_request_id}.{format}`
pub async fn get_request(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (id, format, _) = read_request(&state, &headers, peer, &tenant, &file, query)?;
    let msg = SearchRequestsRequest {
        tenant: tenant.clone(),
        ids: vec![id.to_owned()],
        ..Default::default()
    };
    let found = search(&state, msg, format).await?;
    if found.is_empty() {
        return Err(Open311Error::not_found(
            tr!("未找到 service_request_id", "service_request_id not found"),
            format,
        ));
    }
    Ok(service_requests(
        format,
        found.iter().map(render::request).collect(),
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
    let (token, format, _) = read_request(&state, &headers, peer, &tenant, &file, query)?;
    let msg = ResolveTokenRequest {
        tenant: tenant.clone(),
        token: token.to_owned(),
    };
    let resolved = state
        .public()
        .retried(msg, async |mut c, r| c.resolve_token(r).await)
        .await
        .map_err(|s| {
            if s.code() == Code::NotFound {
                Open311Error::not_found(tr!("未找到 token", "token not found"), format)
            } else {
                Open311Error::from_status(&s, format)
            }
        })?;
    Ok(service_requests(
        format,
        vec![Node::obj([
            ("service_request_id", Node::Str(resolved.tracking_no)),
            ("token", Node::Str(token.to_owned())),
        ])],
    ))
}

/// `POST /open311/v2/{tenant}/requests.{format}` (form-encoded).
pub async fn post_request(
    State(state): State<AppState>,
    peer: Peer,
    Path((tenant, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    req: Request,
) -> Result<Response> {
    let (stem, format) = params::split_file(&file)?;
    if stem != "requests" {
        return Err(Open311Error::not_found(tr!("未找到", "not found"), format));
    }
    limit_ip(&state, &headers, peer, format)?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Open311Error::bad(
            tr!(
                "请以 application/x-www-form-urlencoded 格式发送请求",
                "send the request as application/x-www-form-urlencoded"
            ),
            format,
        ));
    }
    let body = read_body(req, &state)
        .await
        .map_err(|e| Open311Error::from_api(e, format))?;
    // Parameters in the body win over the same ones in the query string.
    let mut p = params::parse(&body, format)?;
    p.extend(params::parse(query.unwrap_or_default().as_bytes(), format)?);
    params::check_tenant(&tenant, &p, format)?;
    let api_key = params::text(&p, "api_key");
    let key_id: String = Sha256::digest(api_key.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    state
        .limits
        .check_channel(&format!("open311:{key_id}"))
        .map_err(|e| Open311Error::from_api(e, format))?;
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| format!("gw-{}", uuid::Uuid::now_v7()));
    let msg = params::create_request(&tenant, api_key, idempotency_key, &p, format)?;
    let created = state
        .public()
        .retried(msg, async |mut c, r| c.create_with_api_key(r).await)
        .await
        .map_err(|s| Open311Error::from_status(&s, format))?;
    Ok(service_requests(
        format,
        vec![Node::obj([
            ("service_request_id", Node::Str(created.tracking_no)),
            ("token", Node::Str(created.token)),
            ("service_notice", Node::opt_str(&created.service_notice)),
            ("account_id", Node::opt_str(&created.account_id)),
        ])],
    ))
}
