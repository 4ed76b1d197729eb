//! Reading and acting on work orders: get (by id or ticket), list a queue,
//! and translate an `ActRequest` into the engine's action.

use jiesu_auth::{Principal, Role, principal};
use jiesu_common::tr;
use jiesu_proto::dispatch::{
    self as pb, ActRequest, GetWorkOrderByTicketRequest, GetWorkOrderRequest,
    ListWorkOrdersRequest, ListWorkOrdersResponse, WorkOrder, act_request,
};
use tonic::{Request, Response, Status};

use super::{
    DispatchApi, DispatchError, ORDER_ACTORS, ORDER_READERS, directory, field, parse_id,
    views::{for_citizen, view, with_suggestions},
};
use crate::{
    domain::workflow::{Action, Refusal},
    engine,
    store::{self, ListFilter, Queue},
};

fn dispatch_of(
    d: Option<pb::Dispatch>,
    name: &'static str,
) -> Result<(String, Vec<String>), DispatchError> {
    let d = d.unwrap_or_default();
    let lead = d.lead_unit_id.trim().to_owned();
    if lead.is_empty() {
        return Err(field(
            name,
            tr!("必须指定主办单位", "the lead unit is required"),
        ));
    }
    if d.co_unit_ids.len() > 10 {
        return Err(field(
            "co_unit_ids",
            tr!("最多 10 个协办单位", "at most 10 co-handling units"),
        ));
    }
    Ok((
        lead,
        d.co_unit_ids.iter().map(|u| u.trim().to_owned()).collect(),
    ))
}

/// The domain action of a request, or the field that is wrong.
fn action_of(a: Option<act_request::Action>) -> Result<Action, DispatchError> {
    use act_request::Action as A;
    let a = a.ok_or_else(|| {
        field(
            "action",
            tr!(
                "请指明操作（sign、resolve、return……）",
                "say which action (sign, resolve, return, ...)"
            ),
        )
    })?;
    Ok(match a {
        A::Dispatch(d) => {
            let (lead, co) = dispatch_of(Some(d), "dispatch.lead_unit_id")?;
            Action::Dispatch { lead, co }
        }
        A::Sign(_) => Action::Sign,
        A::Progress(_) => Action::Progress,
        A::Pause(_) => Action::Pause,
        A::Resume(_) => Action::Resume,
        A::Return(_) => Action::Return,
        A::Arbitrate(x) => Action::Arbitrate {
            accept: x.accept,
            redispatch: match x.redispatch {
                Some(d) if x.accept => {
                    Some(dispatch_of(Some(d), "arbitrate.redispatch.lead_unit_id")?)
                }
                _ => None,
            },
        },
        A::RequestExtension(x) => Action::RequestExtension { days: x.days },
        A::DecideExtension(x) => Action::DecideExtension { approve: x.approve },
        A::Resolve(_) => Action::Resolve,
        A::Review(x) => Action::Review { approve: x.approve },
        A::Close(_) => Action::Close,
        A::Reopen(_) => Action::Reopen,
        A::Instruct(_) => Action::Instruct,
        A::SubmitPart(_) => Action::SubmitPart,
        A::Whistle(w) => {
            if w.unit_ids.len() > 20 {
                return Err(field(
                    "whistle.unit_ids",
                    tr!("最多 20 个单位", "at most 20 units"),
                ));
            }
            Action::Whistle {
                level: u8::try_from(w.level)
                    .map_err(|_| field("whistle.level", tr!("必须是 2 到 4", "must be 2 to 4")))?,
                units: w.unit_ids.iter().map(|u| u.trim().to_owned()).collect(),
            }
        }
        A::ReportIn(_) => Action::ReportIn,
        A::Leadership(_) => Action::Leadership,
    })
}

/// A handler's token must name a unit the account may act for: refused for
/// reads as for writes (a unit that does not exist, is inactive, or lists
/// members without this account).
async fn acts_for_its_unit(api: &DispatchApi, who: &Principal) -> Result<(), DispatchError> {
    if who.has_role(Role::Handler) && !directory::may_act_for_unit(&api.db, who).await? {
        return Err(DispatchError::Refused(Refusal::WrongUnit(tr!(
            "该账号不能代表令牌中指定的单位办理",
            "this account may not act for the unit its token names"
        ))));
    }
    Ok(())
}

pub async fn get_by_ticket(
    api: &DispatchApi,
    request: Request<GetWorkOrderByTicketRequest>,
) -> Result<Response<WorkOrder>, Status> {
    let who = principal(&request)?;
    // The citizen reads their own through the citizen view.
    if !who.is_citizen_only() {
        who.require_any(ORDER_READERS)
            .map_err(DispatchError::from)?;
    }
    acts_for_its_unit(api, &who).await?;
    let ticket_id = parse_id(&request.get_ref().ticket_id, "ticket_id")?;
    let order = store::find_visible_by_ticket(&api.db, &who, ticket_id)
        .await
        .map_err(DispatchError::from)?
        .ok_or(DispatchError::NotFound)?;
    let view = api.full_view(order).await?;
    Ok(Response::new(if who.is_citizen_only() {
        for_citizen(view)
    } else {
        view
    }))
}

pub async fn get(
    api: &DispatchApi,
    request: Request<GetWorkOrderRequest>,
) -> Result<Response<WorkOrder>, Status> {
    let who = principal(&request)?;
    who.require_any(ORDER_READERS)
        .map_err(DispatchError::from)?;
    acts_for_its_unit(api, &who).await?;
    let id = parse_id(&request.get_ref().id, "id")?;
    let order = store::find_visible(&api.db, &who, id)
        .await
        .map_err(DispatchError::from)?
        .ok_or(DispatchError::NotFound)?;
    Ok(Response::new(api.full_view(order).await?))
}

pub async fn act(
    api: &DispatchApi,
    request: Request<ActRequest>,
) -> Result<Response<WorkOrder>, Status> {
    let who = principal(&request)?;
    let r = request.into_inner();
    // Refused by role before anything is looked up: a caller who may act
    // on no order learns nothing about which exist.
    if !ORDER_ACTORS.iter().any(|role| who.has_role(*role)) {
        return Err(DispatchError::Refused(Refusal::WrongRole(ORDER_ACTORS)).into());
    }
    let id = parse_id(&r.work_order_id, "work_order_id")?;
    acts_for_its_unit(api, &who).await?;
    let reply = match &r.action {
        Some(act_request::Action::Resolve(x)) => x.reply.clone(),
        _ => String::new(),
    };
    let action = action_of(r.action)?;
    let req = engine::Request {
        action,
        note: r.note,
        reply,
    };
    let loaded = api
        .engine
        .act(&who, id, req)
        .await
        .map_err(DispatchError::from)?;
    Ok(Response::new(api.full_view(loaded.model).await?))
}

pub async fn list(
    api: &DispatchApi,
    request: Request<ListWorkOrdersRequest>,
) -> Result<Response<ListWorkOrdersResponse>, Status> {
    let who = principal(&request)?;
    who.require_any(ORDER_READERS)
        .map_err(DispatchError::from)?;
    acts_for_its_unit(api, &who).await?;
    let r = request.get_ref();
    let queue = Queue::parse(r.queue.trim()).ok_or_else(|| {
        field(
            "queue",
            tr!(
                "必须是以下之一：mine、triage、overdue、due_soon、leadership、all",
                "must be one of mine, triage, overdue, due_soon, leadership, all"
            ),
        )
    })?;
    if queue == Queue::Mine && who.unit.is_none() {
        return Err(field(
            "queue",
            tr!(
                "`mine` 需要令牌中指定单位",
                "`mine` needs a token that names a unit"
            ),
        )
        .into());
    }
    if who.has_role(Role::Handler)
        && !who.has_role(Role::Dispatcher)
        && !who.has_role(Role::Supervisor)
        && queue != Queue::Mine
    {
        return Err(DispatchError::Refused(Refusal::WrongRole(&[
            Role::Dispatcher,
            Role::Supervisor,
        ]))
        .into());
    }
    let status = match r.status.trim() {
        "" => None,
        s if crate::domain::workflow::Status::parse(s).is_some() => Some(s.to_owned()),
        _ => {
            return Err(field("status", tr!("不是工单状态", "is not a work-order status")).into());
        }
    };
    if r.level > 4 {
        return Err(field("level", tr!("必须是 1 到 4", "must be 1 to 4")).into());
    }
    let limit = match r.page_size {
        0 => 50,
        n if n <= 200 => u64::from(n),
        _ => return Err(field("page_size", tr!("最多 200", "at most 200")).into()),
    };
    let offset: u64 = match r.page_token.trim() {
        "" => 0,
        t => t.parse().map_err(|_| {
            field(
                "page_token",
                tr!(
                    "不是之前某一页给出的翻页令牌",
                    "is not a token from an earlier page"
                ),
            )
        })?,
    };
    let f = ListFilter {
        queue,
        unit: who.unit.clone(),
        status,
        level: (r.level > 0).then(|| i16::try_from(r.level).unwrap_or(1)),
        limit: limit + 1,
        offset,
        now: api.engine.clock.now(),
    };
    let mut rows = store::list(&api.db, &who, &f)
        .await
        .map_err(DispatchError::from)?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(50));
    let mut work_orders = Vec::with_capacity(rows.len());
    for m in rows {
        let l = engine::details(&api.db, m)
            .await
            .map_err(DispatchError::from)?;
        let now = api.engine.clock.now();
        work_orders.push(with_suggestions(&api.db, view(&l, Vec::new(), now), now).await?);
    }
    Ok(Response::new(ListWorkOrdersResponse {
        work_orders,
        next_page_token: if more {
            (offset + limit).to_string()
        } else {
            String::new()
        },
    }))
}
