//! Dispatch through its event input and gRPC interface, against real
//! PostgreSQL and NATS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use jiesu_auth::Role;
use jiesu_bus::{Bus, H_MSG_ID, H_TENANT};
use jiesu_dispatch::{
    Dispatch, DispatchConfig, Migrations,
    seed::{RouteSeed, UnitSeed},
};
use jiesu_proto::{
    Event,
    dispatch::{
        ActRequest, Empty, GetWorkOrderByTicketRequest, GetWorkOrderRequest, TicketDispatched,
        WorkOrder, act_request::Action, dispatch_service_client::DispatchServiceClient,
    },
    intake::{TicketMerged, TicketReceived, TicketUnmerged},
};
use jiesu_testkit::{Spawned, TestDb, TestEnv, wait_until};
use tonic::{Code, Request, transport::Channel};
use uuid::Uuid;

struct Env {
    db: TestDb,
    kit: TestEnv,
    bus: Bus,
    client: DispatchServiceClient<Channel>,
    _dispatch: Spawned,
}

async fn start() -> Env {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut DispatchConfig)) -> Env {
    let db = TestDb::new::<Migrations>("dispatch").await;
    let conn = db.connect().await;
    jiesu_dispatch::seed::upsert_units(
        &conn,
        "370202",
        &[UnitSeed {
            id: "sn-gafj".into(),
            name: "青岛市公安局市南分局".into(),
            kind: "department".into(),
            region_code: "370202".into(),
            parent: String::new(),
        }],
    )
    .await
    .unwrap();
    jiesu_dispatch::seed::upsert_routes(
        &conn,
        "370202",
        &[RouteSeed {
            category: "SH01".into(),
            unit: "sn-gafj".into(),
        }],
    )
    .await
    .unwrap();
    let kit = TestEnv::new().await;
    let bus = kit.bus.connect().await;
    // The stream the test publishes to exists before the service's
    // consumers race to create it too (a publish right after a concurrent
    // create can find no stream yet).
    bus.ensure_stream("intake").await.unwrap();
    let dispatch = kit.spawn_on::<Dispatch>(&db, tweak).await;
    let client = DispatchServiceClient::connect(dispatch.url())
        .await
        .unwrap();
    Env {
        db,
        kit,
        bus,
        client,
        _dispatch: dispatch,
    }
}

fn received(category: &str, submitter: &str) -> TicketReceived {
    TicketReceived {
        ticket_id: Uuid::now_v7().to_string(),
        tenant: "370202".into(),
        region_code: "370202".into(),
        tracking_no: "370202-20261122-00001".into(),
        channel: "hotline".into(),
        nature: "complaint".into(),
        category: category.into(),
        category_name: "噪声扰民".into(),
        submitter_sub: submitter.into(),
        ..Default::default()
    }
}

/// Publishes as intake's relay would: the event id in `Nats-Msg-Id`.
async fn publish<E: Event>(bus: &Bus, ev: &E, event_id: Uuid) {
    bus.ensure_stream(E::CONTEXT).await.unwrap();
    let mut h = HeaderMap::new();
    h.insert(H_MSG_ID, event_id.to_string().as_str());
    h.insert(H_TENANT, ev.tenant());
    bus.js
        .publish_with_headers(
            bus.subject(E::CONTEXT, ev.tenant(), E::NAME),
            h,
            prost::Message::encode_to_vec(ev).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    jiesu_auth::bearer_metadata(&mut r, token).unwrap();
    r
}

async fn order_of(env: &Env, token: &str, ticket_id: &str) -> WorkOrder {
    let mut client = env.client.clone();
    wait_until(Duration::from_secs(15), "the work order", || {
        let mut client = client.clone();
        let req = authed(
            token,
            GetWorkOrderByTicketRequest {
                ticket_id: ticket_id.into(),
            },
        );
        async move {
            client
                .get_work_order_by_ticket(req)
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    client
        .get_work_order_by_ticket(authed(
            token,
            GetWorkOrderByTicketRequest {
                ticket_id: ticket_id.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The `ticket.dispatched` events dispatch published so far.
async fn dispatched_events(env: &Env) -> Vec<TicketDispatched> {
    env.kit
        .bus
        .published("dispatch", "370202", TicketDispatched::NAME)
        .await
        .iter()
        .map(|p| prost::Message::decode(p.as_slice()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_received_ticket_is_routed_once_and_announced() {
    let env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let ev = received("SH01", "agent-1");
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    let order = order_of(&env, &agent, &ev.ticket_id).await;
    assert_eq!(order.status, "dispatched");
    let unit = order.unit.clone().unwrap();
    assert_eq!(unit.id, "sn-gafj");
    assert_eq!(order.timeline.len(), 1);
    assert!(order.timeline[0].note.contains("青岛市公安局市南分局"));

    let out = wait_until(
        Duration::from_secs(10),
        "ticket.dispatched published",
        || async { dispatched_events(&env).await.pop() },
    )
    .await;
    assert_eq!(out.ticket_id, ev.ticket_id);
    assert_eq!(out.work_order_id, order.id);
    assert_eq!(out.unit_id, "sn-gafj");

    // The same ticket announced again under a new event id (an outbox
    // replayed past every de-duplication window) changes nothing.
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    wait_until(Duration::from_secs(10), "second event handled", || async {
        (env.db.count("SELECT count(*) FROM bus_inbox").await == 2).then_some(())
    })
    .await;
    assert_eq!(
        env.db
            .count(&format!(
                "SELECT count(*) FROM work_orders WHERE ticket_id = '{}'",
                ev.ticket_id
            ))
            .await,
        1
    );
    assert_eq!(dispatched_events(&env).await.len(), 1);
}

#[tokio::test]
async fn a_ticket_nobody_is_responsible_for_waits_in_triage() {
    let env = start().await;
    let dispatcher = env.kit.keys.token("370202", &[Role::Dispatcher], "d-1");
    let ev = received("QT99", "agent-1");
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    let order = order_of(&env, &dispatcher, &ev.ticket_id).await;
    assert_eq!(order.status, "triage");
    assert!(order.unit.is_none());
    assert!(order.timeline[0].note.contains("研判"));
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM bus_outbox WHERE event = 'dispatch.ticket.dispatched'")
            .await,
        0
    );
}

#[tokio::test]
async fn work_orders_are_read_inside_the_callers_scope() {
    let mut env = start().await;
    let ev = received("SH01", "wx-citizen-1");
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    order_of(&env, &agent, &ev.ticket_id).await;
    let get = |token: &str| {
        authed(
            token,
            GetWorkOrderByTicketRequest {
                ticket_id: ev.ticket_id.clone(),
            },
        )
    };
    let other = env.kit.keys.token("370203", &[Role::Agent], "agent-9");
    assert_eq!(
        env.client
            .get_work_order_by_ticket(get(&other))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let owner = env
        .kit
        .keys
        .token("370202", &[Role::Citizen], "wx-citizen-1");
    assert!(
        env.client
            .get_work_order_by_ticket(get(&owner))
            .await
            .is_ok()
    );
    let stranger = env
        .kit
        .keys
        .token("370202", &[Role::Citizen], "wx-citizen-2");
    assert_eq!(
        env.client
            .get_work_order_by_ticket(get(&stranger))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        env.client
            .get_work_order_by_ticket(Request::new(GetWorkOrderByTicketRequest {
                ticket_id: ev.ticket_id.clone(),
            }))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn with_grid_unreachable_a_ticket_is_routed_by_its_region_code() {
    let env = start_with(|cfg| {
        // Nothing listens there.
        cfg.grid_url = format!("http://127.0.0.1:{}", jiesu_testkit::free_port());
        cfg.grid_key = "k".into();
    })
    .await;
    let mut ev = received("SH01", "agent-1");
    ev.point = Some(jiesu_proto::common::GeoPoint {
        lat: 36.06,
        lon: 120.38,
    });
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let order = order_of(&env, &agent, &ev.ticket_id).await;
    assert_eq!(order.status, "dispatched");
    assert_eq!(order.unit.unwrap().id, "sn-gafj");
    assert_eq!(order.region_code, "370202");
}

fn act(token: &str, work_order_id: &str, action: Action) -> Request<ActRequest> {
    authed(
        token,
        ActRequest {
            work_order_id: work_order_id.into(),
            note: String::new(),
            action: Some(action),
        },
    )
}

/// The `event`s of a work order's timeline, in order.
fn events(o: &WorkOrder) -> Vec<String> {
    o.timeline.iter().map(|e| e.event.clone()).collect()
}

/// A work order of `SH01` dispatched to sn-gafj, from a published
/// `ticket.received`; returns it as a dispatcher reads it.
async fn new_order(env: &Env) -> WorkOrder {
    let ev = received("SH01", "agent-1");
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    let d = env.kit.keys.token("370202", &[Role::Dispatcher], "d-1");
    order_of(env, &d, &ev.ticket_id).await
}

#[tokio::test]
async fn due_timers_issue_notices_once_and_supervision_lifts_the_order() {
    let env = start_with(|cfg| cfg.timer_poll = Duration::from_millis(200)).await;
    let wo = new_order(&env).await.id;
    let h = env
        .kit
        .keys
        .unit_token("370202", &[Role::Handler], "h-sn-gafj", "sn-gafj");
    let read = |env: &Env| {
        let (mut client, h, wo) = (env.client.clone(), h.clone(), wo.clone());
        async move {
            client
                .get_work_order(authed(&h, GetWorkOrderRequest { id: wo }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let count =
        |cond: &str| format!("SELECT count(*) FROM timers WHERE work_order_id = '{wo}' AND {cond}");
    let pending = "fired_at IS NULL AND cancelled_at IS NULL";
    // Reminder, urge and supervise for each of the three deadlines.
    assert_eq!(env.db.count(&count(pending)).await, 9);
    // Time passes: the sign-for reminder falls due.
    let due_now = |notice: &str, deadline: &str| {
        format!(
            "UPDATE timers SET due_at = now() WHERE work_order_id = '{wo}' \
             AND notice = '{notice}' AND deadline = '{deadline}'"
        )
    };
    assert_eq!(env.db.execute(&due_now("reminder", "sign")).await, 1);
    let v = wait_until(Duration::from_secs(10), "the reminder", || async {
        let v = read(&env).await;
        events(&v).contains(&"reminder".to_owned()).then_some(v)
    })
    .await;
    let reminder = v.timeline.iter().find(|e| e.event == "reminder").unwrap();
    assert_eq!(reminder.note, "提醒单：签收时限将至");
    // Signing meets that deadline: its urge and supervise are cancelled.
    env.client
        .clone()
        .act(act(&h, &wo, Action::Sign(Empty {})))
        .await
        .unwrap();
    assert_eq!(
        env.db
            .count(&count(&format!("deadline = 'sign' AND {pending}")))
            .await,
        0
    );
    // Long past the resolve deadline: 督办 and a lift to level 2.
    assert_eq!(env.db.execute(&due_now("supervise", "resolve")).await, 1);
    let v = wait_until(Duration::from_secs(10), "the supervise order", || async {
        let v = read(&env).await;
        (v.level == 2).then_some(v)
    })
    .await;
    let ev = events(&v);
    assert_eq!(ev.iter().filter(|e| *e == "reminder").count(), 1, "{ev:?}");
    assert!(
        ev.contains(&"supervise".to_owned()) && ev.contains(&"escalated".to_owned()),
        "{ev:?}"
    );
    assert_eq!(env.db.count(&count("fired_at IS NOT NULL")).await, 2);
}

#[tokio::test]
async fn a_merged_ticket_s_clocks_stop_and_start_again_when_unmerged() {
    let env = start().await;
    let master = new_order(&env).await;
    let child = new_order(&env).await;
    let pending = format!(
        "SELECT count(*) FROM timers WHERE work_order_id = '{}' \
         AND fired_at IS NULL AND cancelled_at IS NULL",
        child.id
    );
    assert!(env.db.count(&pending).await > 0);
    let merged = TicketMerged {
        ticket_id: child.ticket_id.clone(),
        tenant: "370202".into(),
        tracking_no: child.tracking_no.clone(),
        master_id: master.ticket_id.clone(),
        master_tracking_no: master.tracking_no.clone(),
        actor_role: "agent".into(),
        ..Default::default()
    };
    publish(&env.bus, &merged, Uuid::now_v7()).await;
    let d = env.kit.keys.token("370202", &[Role::Dispatcher], "d-1");
    wait_until(Duration::from_secs(15), "the work order merged", || async {
        let v = order_of(&env, &d, &child.ticket_id).await;
        (v.status == "merged").then_some(())
    })
    .await;
    assert_eq!(
        env.db.count(&pending).await,
        0,
        "a merged order's clocks stop"
    );
    let unmerged = TicketUnmerged {
        ticket_id: child.ticket_id.clone(),
        tenant: "370202".into(),
        tracking_no: child.tracking_no.clone(),
        former_master_id: master.ticket_id.clone(),
        actor_role: "agent".into(),
        ..Default::default()
    };
    publish(&env.bus, &unmerged, Uuid::now_v7()).await;
    wait_until(
        Duration::from_secs(15),
        "the work order unmerged",
        || async {
            let v = order_of(&env, &d, &child.ticket_id).await;
            (v.status == "dispatched").then_some(())
        },
    )
    .await;
    assert!(
        env.db.count(&pending).await > 0,
        "its notices are set again"
    );
}

/// Orders made before `ticket.units` existed are announced once, with every
/// unit involved, so intake's lookup finds them for each of those units.
#[tokio::test]
async fn open_orders_units_are_announced_once() {
    use jiesu_proto::dispatch::TicketUnits;
    let env = start().await;
    let order = new_order(&env).await;
    // As if the order predated the event: the start-up backfill ran on an
    // empty database and left its marker.
    wait_until(Duration::from_secs(15), "the start-up backfill", || async {
        (env.db
            .execute("DELETE FROM backfills WHERE name = 'ticket_units'")
            .await
            == 1)
            .then_some(())
    })
    .await;
    let engine = jiesu_dispatch::engine::Engine {
        db: env.db.connect().await,
        outbox: jiesu_bus::Outbox::new(&env.kit.bus.cfg),
        settings: jiesu_dispatch::store::settings::SettingsCache::new(Duration::from_secs(1)),
        clock: env.kit.clock.clock(),
    };
    assert_eq!(
        jiesu_dispatch::backfill::once(&engine).await.unwrap(),
        Some(1)
    );
    assert_eq!(jiesu_dispatch::backfill::once(&engine).await.unwrap(), None);
    let units: Vec<TicketUnits> =
        wait_until(Duration::from_secs(15), "two ticket.units", || async {
            let all: Vec<TicketUnits> = env
                .kit
                .bus
                .published("dispatch", "370202", TicketUnits::NAME)
                .await
                .iter()
                .map(|p| prost::Message::decode(p.as_slice()).unwrap())
                .collect();
            (all.len() == 2).then_some(all)
        })
        .await;
    for u in units {
        assert_eq!(u.ticket_id, order.ticket_id);
        assert_eq!(u.unit_ids, vec!["sn-gafj".to_owned()]);
    }
}
