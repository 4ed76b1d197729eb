//! Grid events closed in the grid or whistled up (learning their ticket
//! from intake's `ticket.received`), their stats, and broadcasts.

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::Utc;
use jiesu_auth::Role;
use jiesu_bus::{H_MSG_ID, H_TENANT};
use jiesu_proto::{
    Event,
    grid::{
        BroadcastRequest, CloseEventRequest, EventStatsRequest, EventStatsRow, GetEventRequest,
        GridEvent, ListEventsRequest, ReportEventRequest, WhistleEventRequest,
    },
    intake::TicketReceived,
    time::to_timestamp,
};
use jiesu_testkit::wait_until;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{Grid, ZS, authed, refusal, refused, two_grids, worker};

/// What intake announces when it has made a whistled event a ticket.
async fn ticket_received(g: &Grid, event_id: &str, tracking_no: &str) -> String {
    let ev = TicketReceived {
        ticket_id: Uuid::now_v7().to_string(),
        tenant: "370202".into(),
        region_code: "370202006".into(),
        tracking_no: tracking_no.into(),
        channel: "grid".into(),
        category: "SH01".into(),
        submitter_sub: format!("grid-event:{event_id}"),
        ..Default::default()
    };
    g.bus.ensure_stream("intake").await.unwrap();
    let mut h = HeaderMap::new();
    h.insert(H_MSG_ID, Uuid::now_v7().to_string().as_str());
    h.insert(H_TENANT, ev.tenant.as_str());
    g.bus
        .js
        .publish_with_headers(
            g.bus.subject("intake", &ev.tenant, TicketReceived::NAME),
            h,
            prost::Message::encode_to_vec(&ev).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    ev.ticket_id
}

fn report(key: &str, content: &str) -> ReportEventRequest {
    ReportEventRequest {
        lat: 36.065,
        lon: 120.385,
        content: content.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

fn whistle(id: &str, level: &str, category: &str, reason: &str) -> WhistleEventRequest {
    WhistleEventRequest {
        id: id.into(),
        level: level.into(),
        category: category.into(),
        reason: reason.into(),
    }
}

#[tokio::test]
async fn grid_events_close_in_the_grid_or_whistle_up_to_a_ticket() {
    let g = Grid::start().await;
    two_grids(&g).await;
    worker(&g, "gw-1", "王海燕", "G1").await;
    worker(&g, "gw-3", "李强", "G3").await;
    let gw1 = g.token(Role::GridWorker, "gw-1");
    let gw3 = g.token(Role::GridWorker, "gw-3");
    let send = |token: &str, r: ReportEventRequest| {
        let mut c = g.c();
        let req = authed(token, r);
        async move { c.report_event(req).await }
    };
    let (code, jiesu_code, _, _) = refusal(send(&gw3, report("k0", "不在我的网格")).await);
    assert_eq!(
        (code, jiesu_code.as_str()),
        (Code::PermissionDenied, "not_your_grid")
    );
    let first = send(&gw1, report("k1", "3号楼东侧消防通道被杂物堵塞"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            first.grid_code.as_str(),
            first.status.as_str(),
            first.community_code.as_str()
        ),
        ("G1", "reported", ZS)
    );
    let again = send(&gw1, report("k1", "3号楼东侧消防通道被杂物堵塞"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, first.id, "a retry is the same event");
    let id1 = first.id.clone();

    let close = |token: &str, id: &str, result: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            CloseEventRequest {
                id: id.into(),
                result: result.into(),
            },
        );
        async move { c.close_event(req).await }
    };
    let dispatcher = g.token(Role::Dispatcher, "d-1");
    for token in [&gw3, &dispatcher] {
        assert_eq!(
            refused(close(token, &id1, "x").await).0,
            Code::PermissionDenied,
            "only the grid's people close its matters"
        );
    }
    let closed = close(&gw1, &id1, "已联系物业清理，通道恢复畅通")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status, "closed");
    let blow = |id: &str, w: WhistleEventRequest| {
        let mut c = g.c();
        let req = authed(&gw1, WhistleEventRequest { id: id.into(), ..w });
        async move { c.whistle_event(req).await }
    };
    let (code, jiesu_code, _, _) = refusal(blow(&id1, whistle("", "L2", "SH01", "x")).await);
    assert_eq!(
        (code, jiesu_code.as_str()),
        (Code::FailedPrecondition, "illegal_transition")
    );

    // A matter the grid cannot settle: whistled up to the street (L3).
    let second = send(
        &gw1,
        report("k2", "小区门口路面塌陷约两平方米，需住建部门处置"),
    )
    .await
    .unwrap()
    .into_inner();
    let id2 = second.id.clone();
    assert_eq!(
        refused(blow(&id2, whistle("", "L9", "SH01", "x")).await),
        (Code::InvalidArgument, Some("level".into()))
    );
    assert_eq!(
        refused(blow(&id2, whistle("", "L3", "", "涉及多部门")).await),
        (Code::InvalidArgument, Some("category".into()))
    );
    assert_eq!(
        refused(blow(&id2, whistle("", "L3", "SH 01", "涉及多部门")).await),
        (Code::InvalidArgument, Some("category".into()))
    );
    let whistled = blow(
        &id2,
        whistle("", "L3", "SH01", "涉及多部门，网格内无法解决"),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        (
            whistled.status.as_str(),
            whistled.level.as_str(),
            whistled.category.as_str()
        ),
        ("whistled", "L3", "SH01")
    );

    // Intake makes it a ticket; grid learns its number.
    let ticket_id = ticket_received(&g, &id2, "370202-20261122-00042").await;
    let get = |token: &str, id: &str| {
        let mut c = g.c();
        let req = authed(token, GetEventRequest { id: id.into() });
        async move { c.get_event(req).await }
    };
    let event: GridEvent = wait_until(Duration::from_secs(30), "the whistle's ticket", || async {
        let e = get(&gw1, &id2).await.unwrap().into_inner();
        (!e.tracking_no.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(
        (event.ticket_id.as_str(), event.tracking_no.as_str()),
        (ticket_id.as_str(), "370202-20261122-00042")
    );
    // A dispatcher follows the ticket to its event, inside their area only.
    assert_eq!(get(&dispatcher, &id2).await.unwrap().into_inner().id, id2);
    let elsewhere = g.scoped(Role::Dispatcher, "d-2", "370202007");
    assert_eq!(refused(get(&elsewhere, &id2).await).0, Code::NotFound);
    assert_eq!(refused(get(&gw3, &id2).await).0, Code::PermissionDenied);

    // One open, one closed in the grid, one whistled: half closed in the grid.
    send(&gw1, report("k3", "楼道灯不亮")).await.unwrap();
    let supervisor = g.token(Role::Supervisor, "sup-1");
    let stats = |token: &str, by: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            EventStatsRequest {
                from: Some(to_timestamp(Utc::now() - chrono::Duration::hours(1))),
                to: Some(to_timestamp(Utc::now() + chrono::Duration::hours(1))),
                by: by.into(),
            },
        );
        async move { c.event_stats(req).await }
    };
    let by_street = stats(&supervisor, "street").await.unwrap().into_inner();
    assert_eq!(
        by_street.rows,
        vec![EventStatsRow {
            key: "370202006".into(),
            reported: 3,
            closed_in_grid: 1,
            whistled: 1,
            open: 1,
            share_closed_in_grid: 0.5
        }]
    );
    assert_eq!(by_street.total.unwrap().reported, 3);
    assert_eq!(refused(stats(&gw1, "").await).0, Code::PermissionDenied);
    assert_eq!(
        refused(stats(&supervisor, "city").await),
        (Code::InvalidArgument, Some("by".into()))
    );
    let mine = g
        .c()
        .list_events(authed(
            &gw1,
            ListEventsRequest {
                status: "reported".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(mine.len(), 1);
    assert_eq!(g.published("grid_event.whistled").await, 1);
    assert_eq!(g.published("grid_event.closed").await, 1);
    assert_eq!(g.published("grid_event.reported").await, 3);
}

#[tokio::test]
async fn a_published_event_carries_no_personal_data() {
    let g = Grid::start().await;
    two_grids(&g).await;
    worker(&g, "gw-1", "王海燕", "G1").await;
    let gw1 = g.token(Role::GridWorker, "gw-1");
    let saved = g
        .c()
        .report_event(authed(&gw1, report("k1", "住户13912345678反映楼道堵塞")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        saved.content.contains("13912345678"),
        "the grid keeps the text"
    );
    g.published("grid_event.reported").await;
    let leaked =
        g.db.count(
            "SELECT count(*) FROM bus_outbox WHERE event = 'grid.grid_event.reported' \
             AND position(convert_to('13912345678', 'UTF8') in payload) > 0",
        )
        .await;
    assert_eq!(leaked, 0, "the fact is redacted");
}

#[tokio::test]
async fn a_broadcast_names_the_grids_it_reaches() {
    let g = Grid::start().await;
    two_grids(&g).await;
    let supervisor = g.token(Role::Supervisor, "sup-1");
    let body = BroadcastRequest {
        region_codes: vec![ZS.into()],
        grid_codes: vec!["G3".into()],
        kind: "emergency".into(),
        title: "台风预警".into(),
        body: "今晚有台风，请居民关好门窗，非必要不外出。".into(),
    };
    let send = |token: &str, b: BroadcastRequest| {
        let mut c = g.c();
        let req = authed(token, b);
        async move { c.broadcast(req).await }
    };
    let receipt = send(&supervisor, body.clone()).await.unwrap().into_inner();
    assert_eq!(receipt.grid_codes, ["G1", "G2", "G3"]);
    let gw = g.token(Role::GridWorker, "gw-1");
    assert_eq!(
        refused(send(&gw, body.clone()).await).0,
        Code::PermissionDenied
    );
    let unknown = BroadcastRequest {
        grid_codes: vec!["NOPE".into()],
        ..body.clone()
    };
    assert_eq!(
        refused(send(&supervisor, unknown).await),
        (Code::InvalidArgument, Some("grid_codes[0]".into()))
    );
    let shouting = BroadcastRequest {
        kind: "rumour".into(),
        ..body
    };
    assert_eq!(
        refused(send(&supervisor, shouting).await),
        (Code::InvalidArgument, Some("kind".into()))
    );
    assert_eq!(g.published("broadcast.requested").await, 1);
}
