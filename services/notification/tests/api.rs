//! Notification through its event input and gRPC interface, against real
//! PostgreSQL and NATS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use jiesu_auth::{Role, TokenSpec};
use jiesu_bus::{Bus, H_MSG_ID, H_TENANT};
use jiesu_notification::NotificationTarget;
use jiesu_proto::{
    Event,
    dispatch::TicketDispatched,
    notification::{
        ListNotificationsRequest, notification_service_client::NotificationServiceClient,
    },
};
use jiesu_testkit::{Spawned, TestEnv, TestKeys, wait_until};
use tonic::{Code, Request, transport::Channel};
use uuid::Uuid;

struct Env {
    kit: TestEnv,
    bus: Bus,
    client: NotificationServiceClient<Channel>,
    notification: Spawned,
}

async fn start() -> Env {
    let kit = TestEnv::new().await;
    let bus = kit.bus.connect().await;
    // The stream the test publishes to exists before the service's
    // consumers race to create it too (a publish right after a concurrent
    // create can find no stream yet).
    bus.ensure_stream("dispatch").await.unwrap();
    let notification = kit.spawn::<NotificationTarget>(|_| {}).await;
    let client = NotificationServiceClient::connect(notification.url())
        .await
        .unwrap();
    Env {
        kit,
        bus,
        client,
        notification,
    }
}

fn dispatched(unit: &str) -> TicketDispatched {
    TicketDispatched {
        ticket_id: Uuid::now_v7().to_string(),
        work_order_id: Uuid::now_v7().to_string(),
        tenant: "370202".into(),
        region_code: "370202".into(),
        tracking_no: "370202-20261122-00007".into(),
        category: "SC01".into(),
        category_name: "预付卡消费".into(),
        unit_id: unit.into(),
        unit_name: format!("单位{unit}"),
        ..Default::default()
    }
}

async fn publish(bus: &Bus, ev: &TicketDispatched, event_id: Uuid) {
    bus.ensure_stream("dispatch").await.unwrap();
    let mut h = HeaderMap::new();
    h.insert(H_MSG_ID, event_id.to_string().as_str());
    h.insert(H_TENANT, ev.tenant.as_str());
    bus.js
        .publish_with_headers(
            bus.subject("dispatch", &ev.tenant, TicketDispatched::NAME),
            h,
            prost::Message::encode_to_vec(ev).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

fn list(token: &str, req: ListNotificationsRequest) -> Request<ListNotificationsRequest> {
    let mut r = Request::new(req);
    jiesu_auth::bearer_metadata(&mut r, token).unwrap();
    r
}

async fn sent_count(env: &Env) -> i64 {
    env.notification
        .db()
        .count("SELECT count(*) FROM notifications WHERE status = 'sent'")
        .await
}

fn handler_of(keys: &TestKeys, unit: &str) -> String {
    keys.token_with(TokenSpec {
        sub: format!("h-{unit}"),
        tenant: "370202".into(),
        scope: None,
        roles: vec![Role::Handler],
        unit: Some(unit.into()),
        grids: vec![],
        ttl: Duration::from_secs(600),
    })
}

#[tokio::test]
async fn each_dispatch_notifies_its_unit_once() {
    let mut env = start().await;
    let ev = dispatched("sn-scjgj");
    publish(&env.bus, &ev, Uuid::now_v7()).await;
    wait_until(Duration::from_secs(15), "the notification sent", || async {
        (sent_count(&env).await == 1).then_some(())
    })
    .await;
    let dispatcher = env.kit.keys.token("370202", &[Role::Dispatcher], "d-1");
    let page = env
        .client
        .list_notifications(list(
            &dispatcher,
            ListNotificationsRequest {
                ticket_id: ev.ticket_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.notifications.len(), 1);
    let n = &page.notifications[0];
    assert_eq!(n.recipient_id, "sn-scjgj");
    assert_eq!(n.status, "sent");
    assert!(n.body.contains("370202-20261122-00007") && n.body.contains("预付卡消费"));
    assert!(n.sent_at.is_some());

    // Lose the durable consumer (an operator deleted it, or NATS came back
    // without its state): the consumer is set up again, JetStream delivers
    // the event anew, and the inbox keeps it from notifying twice.
    let stream = env
        .bus
        .js
        .get_stream(env.bus.stream_name("dispatch"))
        .await
        .unwrap();
    stream
        .delete_consumer(jiesu_notification::CONSUMER_TICKET_DISPATCHED)
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), "the redelivery acked", || {
        let stream = stream.clone();
        async move {
            let info = stream
                .consumer_info(jiesu_notification::CONSUMER_TICKET_DISPATCHED)
                .await
                .ok()?;
            (info.ack_floor.stream_sequence >= 1 && info.num_ack_pending == 0).then_some(())
        }
    })
    .await;
    assert_eq!(
        env.notification
            .db()
            .count("SELECT count(*) FROM notifications")
            .await,
        1
    );
    assert_eq!(
        env.notification
            .db()
            .count("SELECT count(*) FROM bus_inbox")
            .await,
        1
    );
}

#[tokio::test]
async fn handlers_see_their_own_units_notifications_only() {
    let mut env = start().await;
    for unit in ["sn-scjgj", "sn-scjgj", "sn-zjj"] {
        publish(&env.bus, &dispatched(unit), Uuid::now_v7()).await;
    }
    wait_until(
        Duration::from_secs(15),
        "three notifications sent",
        || async { (sent_count(&env).await == 3).then_some(()) },
    )
    .await;
    let scjgj = handler_of(&env.kit.keys, "sn-scjgj");
    let mine = env
        .client
        .list_notifications(list(&scjgj, ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|n| n.recipient_id == "sn-scjgj"));
    // Asking for another unit's does not widen the view.
    let theirs = env
        .client
        .list_notifications(list(
            &scjgj,
            ListNotificationsRequest {
                recipient_id: "sn-zjj".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert!(theirs.is_empty());

    // Pages of one walk all three in order.
    let dispatcher = env.kit.keys.token("370202", &[Role::Dispatcher], "d-1");
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = env
            .client
            .list_notifications(list(
                &dispatcher,
                ListNotificationsRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.notifications.into_iter().map(|n| n.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    // Other tenants, citizens and unit-less handlers see nothing.
    let other = env.kit.keys.token("370203", &[Role::Dispatcher], "d-9");
    assert!(
        env.client
            .list_notifications(list(&other, ListNotificationsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .notifications
            .is_empty()
    );
    let citizen = env.kit.keys.token("370202", &[Role::Citizen], "c-1");
    assert_eq!(
        env.client
            .list_notifications(list(&citizen, ListNotificationsRequest::default()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let unitless = env.kit.keys.token("370202", &[Role::Handler], "h-0");
    assert_eq!(
        env.client
            .list_notifications(list(&unitless, ListNotificationsRequest::default()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let err = env
        .client
        .list_notifications(list(
            &dispatcher,
            ListNotificationsRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        jiesu_proto::status::problem(&err).field.as_deref(),
        Some("page_size")
    );
}
