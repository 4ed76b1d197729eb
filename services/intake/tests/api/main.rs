//! Intake through its gRPC interface, against real PostgreSQL and NATS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod domain;
mod rekey;

use std::time::Duration;

use futures::StreamExt;
use jiesu_auth::{Role, TokenSpec};
use jiesu_intake::{Intake, Migrations, seed::CategorySeed};
use jiesu_proto::intake::{
    AddInformationRequest, Citizen, CreateTicketRequest, CreateWithApiKeyRequest, GetTicketRequest,
    ListCategoriesRequest, Location, RegisterChannelRequest, TicketReceived,
    intake_service_client::IntakeServiceClient,
    public_intake_service_client::PublicIntakeServiceClient,
};
use jiesu_testkit::{Spawned, TestDb, TestEnv};
use tonic::{Code, Request, transport::Channel};

pub(crate) struct Env {
    db: TestDb,
    kit: TestEnv,
    client: IntakeServiceClient<Channel>,
    channel: Channel,
    _intake: Spawned,
}

pub(crate) const NOTIFIER_KEY: &str = "notifier-key";
pub(crate) const NOTIFIER_KEY_SHA256: &str =
    "c922e7e07f52b959a8d4b8ffc21646968b65c74e11c33736a35632b2e77d7d03";

pub(crate) async fn start() -> Env {
    let db = TestDb::new::<Migrations>("intake").await;
    let conn = db.connect().await;
    let cats = [
        ("SH", "社会治理", ""),
        ("SH01", "噪声扰民", "SH"),
        ("SC", "市场监管", ""),
        ("SC01", "预付卡消费", "SC"),
    ]
    .map(|(code, name, parent)| CategorySeed {
        code: code.into(),
        name: name.into(),
        parent: parent.into(),
        ..CategorySeed::default()
    });
    jiesu_intake::seed::upsert_categories(&conn, "370202", &cats)
        .await
        .unwrap();
    let kit = TestEnv::new().await;
    let intake = kit
        .spawn_on::<Intake>(&db, |cfg| {
            // sha256("notifier-key")
            cfg.contact_key_digests = NOTIFIER_KEY_SHA256.into();
        })
        .await;
    let channel = Channel::from_shared(intake.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    Env {
        db,
        kit,
        client: IntakeServiceClient::new(channel.clone()),
        channel,
        _intake: intake,
    }
}

impl Env {
    /// One number from intake's database.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let conn = self.db.connect().await;
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }
}

pub(crate) fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    jiesu_auth::bearer_metadata(&mut r, token).unwrap();
    r
}

pub(crate) fn ticket(phone: &str) -> CreateTicketRequest {
    CreateTicketRequest {
        idempotency_key: String::new(),
        channel: "hotline".into(),
        nature: "complaint".into(),
        category: "SH01".into(),
        content: "楼上装修噪音到晚上11点，回电13912345678".into(),
        location: Some(Location {
            lat: Some(36.06),
            lon: Some(120.38),
            address: "燕儿岛路10号3单元501".into(),
            ..Default::default()
        }),
        citizen: Some(Citizen {
            name: "张先生".into(),
            phone: phone.into(),
            ..Default::default()
        }),
        urgency: String::new(),
        ..Default::default()
    }
}

fn field_of(s: &tonic::Status) -> String {
    jiesu_proto::status::problem(s).field.unwrap_or_default()
}

#[tokio::test]
async fn personal_data_is_encrypted_masked_and_kept_out_of_the_event() {
    let mut env = start().await;
    let bus = env.kit.bus.connect().await;
    let mut events = bus
        .client
        .subscribe(format!("{}.>", env.kit.bus.cfg.subject_root))
        .await
        .unwrap();
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");

    let created = env
        .client
        .create_ticket(authed(&agent, ticket("13800138000")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.status, "received");
    assert!(
        created.tracking_no.starts_with("370202-"),
        "{}",
        created.tracking_no
    );

    // At rest: no plaintext anywhere in the row.
    for needle in ["13800138000", "13912345678", "燕儿岛路10号", "张先生"] {
        let n = env
            .db
            .count(&format!(
                "SELECT count(*) FROM tickets WHERE tickets::text LIKE '%{needle}%'"
            ))
            .await;
        assert_eq!(n, 0, "{needle} stored in plaintext");
    }
    // The event was written with the ticket and published without it.
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM bus_outbox WHERE event = 'intake.ticket.received'")
            .await,
        1
    );
    let msg = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("event published")
        .unwrap();
    let raw = String::from_utf8_lossy(&msg.payload).to_string();
    assert!(!raw.contains("13800138000") && !raw.contains("13912345678"));
    let ev: TicketReceived = prost::Message::decode(msg.payload.as_ref()).unwrap();
    assert_eq!(ev.ticket_id, created.id);
    assert_eq!(ev.tracking_no, created.tracking_no);
    assert_eq!(ev.category_name, "噪声扰民");
    assert!(
        ev.content_redacted.contains("139****5678"),
        "{}",
        ev.content_redacted
    );
    assert_eq!(ev.submitter_sub, "agent-1");

    // On the way out: masked.
    let t = env
        .client
        .get_ticket(authed(
            &agent,
            GetTicketRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let citizen = t.citizen.unwrap();
    assert_eq!(citizen.phone, "138****8000");
    assert_eq!(citizen.name, "张**");
    // A number typed into the text is masked too, for every reader.
    assert!(t.content.contains("139****5678"), "{}", t.content);
    assert!(t.content.starts_with("楼上装修噪音到晚上11点"));
    assert!(!t.location.unwrap().address.contains("10号"));
    assert_eq!(t.timeline.len(), 1);
    assert_eq!(t.timeline[0].event, "received");
    assert!(t.timeline[0].note.contains("12345热线"));
}

#[tokio::test]
async fn idempotency_key_returns_the_first_ticket_and_refuses_reuse() {
    let mut env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let mut req = ticket("13800138001");
    req.idempotency_key = "call-2026-0001".into();
    let first = env
        .client
        .create_ticket(authed(&agent, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = env
        .client
        .create_ticket(authed(&agent, req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, first.id);
    assert!(again.replayed && !first.replayed);
    assert_eq!(env.db.count("SELECT count(*) FROM tickets").await, 1);
    assert_eq!(env.db.count("SELECT count(*) FROM bus_outbox").await, 1);

    req.content = "另一件事".into();
    let err = env
        .client
        .create_ticket(authed(&agent, req))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        jiesu_proto::status::problem(&err).code,
        "idempotency_key_reused"
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let mut env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let cases: Vec<(CreateTicketRequest, &str)> = vec![
        (
            CreateTicketRequest {
                category: "NOPE".into(),
                ..ticket("13800138000")
            },
            "category",
        ),
        (
            CreateTicketRequest {
                category: "SH".into(),
                ..ticket("13800138000")
            },
            "category",
        ),
        (ticket("1380013800"), "citizen.phone"),
        (
            CreateTicketRequest {
                channel: "fax".into(),
                ..ticket("13800138000")
            },
            "channel",
        ),
    ];
    for (req, field) in cases {
        let err = env
            .client
            .create_ticket(authed(&agent, req))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(&err), field);
        assert!(!err.message().contains("13800138000"));
    }
    assert_eq!(env.db.count("SELECT count(*) FROM tickets").await, 0);
}

#[tokio::test]
async fn callers_are_checked_by_role_channel_and_scope() {
    let mut env = start().await;
    // No token.
    let err = env
        .client
        .create_ticket(Request::new(ticket("13800138000")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // A dispatcher does not accept requests.
    let dispatcher = env.kit.keys.token("370202", &[Role::Dispatcher], "d-1");
    let err = env
        .client
        .create_ticket(authed(&dispatcher, ticket("13800138000")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A citizen submits through the app, not as a hotline agent.
    let citizen = env
        .kit
        .keys
        .token("370202", &[Role::Citizen], "wx-citizen-1");
    let err = env
        .client
        .create_ticket(authed(&citizen, ticket("13800138000")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mine = env
        .client
        .create_ticket(authed(
            &citizen,
            CreateTicketRequest {
                channel: "app".into(),
                ..ticket("13800138000")
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let theirs = env
        .client
        .create_ticket(authed(&agent, ticket("13800138002")))
        .await
        .unwrap()
        .into_inner();

    let get = |token: &str, id: &str| authed(token, GetTicketRequest { id: id.into() });
    // The citizen reads their own ticket only.
    assert!(env.client.get_ticket(get(&citizen, &mine.id)).await.is_ok());
    let err = env
        .client
        .get_ticket(get(&citizen, &theirs.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Another county sees nothing; the city above sees it.
    let other = env.kit.keys.token("370203", &[Role::Agent], "agent-9");
    let err = env
        .client
        .get_ticket(get(&other, &theirs.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let city = env.kit.keys.token_with(TokenSpec {
        sub: "city-sup".into(),
        tenant: "370200".into(),
        scope: None,
        roles: vec![Role::Supervisor],
        unit: None,
        grids: vec![],
        ttl: Duration::from_secs(600),
    });
    assert!(env.client.get_ticket(get(&city, &theirs.id)).await.is_ok());
    // A street-level scope elsewhere in the county does not cover a
    // county-level ticket.
    let street = env.kit.keys.token_with(TokenSpec {
        sub: "street".into(),
        tenant: "370202".into(),
        scope: Some("370202007".into()),
        roles: vec![Role::Handler],
        unit: None,
        grids: vec![],
        ttl: Duration::from_secs(600),
    });
    assert_eq!(
        env.client
            .get_ticket(get(&street, &theirs.id))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let err = env
        .client
        .get_ticket(get(&agent, "not-a-uuid"))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "id");
}

#[tokio::test]
async fn categories_come_with_their_tree_and_leaves() {
    let mut env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let cats = env
        .client
        .list_categories(authed(&agent, ListCategoriesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .categories;
    let find = |code: &str| cats.iter().find(|c| c.code == code).unwrap();
    assert!(!find("SH").leaf);
    assert_eq!(find("SH01").parent_code, "SH");
    assert!(find("SH01").leaf);
    assert_eq!(find("SH01").level, 2);
    // Another tenant has its own (here: empty) tree.
    let other = env.kit.keys.token("370203", &[Role::Agent], "agent-9");
    let none = env
        .client
        .list_categories(authed(&other, ListCategoriesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .categories;
    assert!(none.is_empty());
}

#[tokio::test]
async fn grpc_health_reports_serving() {
    let env = start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(env.channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "jiesu.intake.v1.IntakeService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn only_a_configured_service_key_gets_a_contact_and_each_hand_over_is_recorded() {
    use jiesu_proto::intake::{GetContactRequest, contact_service_client::ContactServiceClient};
    let mut env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let created = env
        .client
        .create_ticket(authed(&agent, ticket("13800138077")))
        .await
        .unwrap()
        .into_inner();
    let mut contacts = ContactServiceClient::new(env.channel.clone());
    let ask = |key: Option<&str>, tenant: &str, ticket_id: &str| {
        let mut r = Request::new(GetContactRequest {
            ticket_id: ticket_id.into(),
            tenant: tenant.into(),
            purpose: "notification:test".into(),
        });
        if let Some(k) = key {
            r.metadata_mut()
                .insert(jiesu_proto::SERVICE_KEY, k.parse().unwrap());
        }
        r
    };
    // No key, a wrong key, and a user's JWT instead of a key: refused.
    for req in [
        ask(None, "370202", &created.id),
        ask(Some("guess"), "370202", &created.id),
        authed(
            &agent,
            GetContactRequest {
                ticket_id: created.id.clone(),
                tenant: "370202".into(),
                purpose: "x".into(),
            },
        ),
    ] {
        let err = contacts.get_contact(req).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        assert!(!err.message().contains("13800138077"));
    }
    // Another tenant's name for the ticket: not found.
    let err = contacts
        .get_contact(ask(Some(NOTIFIER_KEY), "370203", &created.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = contacts
        .get_contact(ask(Some(NOTIFIER_KEY), "370202", "nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(env.scalar("SELECT count(*) FROM contact_reads").await, 0);

    let contact = contacts
        .get_contact(ask(Some(NOTIFIER_KEY), "370202", &created.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contact.phone, "13800138077");
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM contact_reads WHERE purpose = 'notification:test' \
             AND client = left('NOTIFIER', 12)"
                .replace("NOTIFIER", NOTIFIER_KEY_SHA256)
                .as_str()
        )
        .await,
        1
    );
}

#[tokio::test]
async fn added_information_and_id_numbers_are_stored_sealed() {
    let env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let mut t = ticket("13800138001");
    t.citizen.as_mut().unwrap().id_number = "11010519491231002X".into();
    let created = env
        .client
        .clone()
        .create_ticket(authed(&agent, t))
        .await
        .unwrap()
        .into_inner();
    for text in [
        "补充：周五周六最严重，可拨13900009999联系我",
        "电话补充：店名为老王烧烤",
    ] {
        env.client
            .clone()
            .add_information(authed(
                &agent,
                AddInformationRequest {
                    ticket_id: created.id.clone(),
                    text: text.into(),
                },
            ))
            .await
            .unwrap();
    }
    // The added text is stored redacted for readers and encrypted in full.
    let plain = env
        .db
        .count("SELECT count(*) FROM ticket_supplements WHERE text_redacted LIKE '%13900009999%' OR text_enc LIKE '%13900009999%'")
        .await;
    assert_eq!(plain, 0);
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ticket_supplements")
            .await,
        2
    );
    // The ID number is sealed like the rest of the caller's data.
    let sealed = env
        .db
        .count("SELECT count(*) FROM tickets WHERE id_number_enc NOT LIKE '%19491231%'")
        .await;
    assert_eq!(sealed, 1);
}

#[tokio::test]
async fn open311_client_details_and_id_numbers_are_stored_sealed() {
    let env = start().await;
    let admin = env
        .kit
        .keys
        .token("370202", &[Role::TenantAdmin], "admin-1");
    let cred = env
        .client
        .clone()
        .register_channel(authed(
            &admin,
            RegisterChannelRequest {
                name: "市民App".into(),
                channel: "app".into(),
                auth: "open311".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut public = PublicIntakeServiceClient::new(env.channel.clone());
    let mut t = ticket("05326666666");
    t.category = "SC01".into();
    t.citizen.as_mut().unwrap().id_number = "11010519491231002X".into();
    let created = public
        .create_with_api_key(CreateWithApiKeyRequest {
            tenant: "370202".into(),
            api_key: cred.api_key.clone(),
            ticket: Some(t),
            email: "zhang@example.com".into(),
            device_id: "dev-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.tracking_no.starts_with("370202-"));
    // The e-mail address given to Open311 is stored only encrypted.
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM tickets WHERE client_meta_enc LIKE '%example.com%' OR tickets::text LIKE '%example.com%'")
            .await,
        0
    );
    assert_eq!(
        env.db
            .count(
                "SELECT count(*) FROM tickets WHERE client_meta_enc IS NOT NULL AND channel = 'app'"
            )
            .await,
        1
    );
    // So is the ID number, on this path as on the agent's.
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM tickets WHERE id_number_enc IS NOT NULL AND id_number_enc NOT LIKE '%19491231%'")
            .await,
        1
    );
}

/// Publishes `ev` as dispatch's relay would.
async fn publish_progress(env: &Env, ev: &jiesu_proto::dispatch::TicketProgressed) {
    use jiesu_proto::Event;
    let bus = env.kit.bus.connect().await;
    bus.ensure_stream("dispatch").await.unwrap();
    let mut h = async_nats::HeaderMap::new();
    h.insert(
        jiesu_bus::H_MSG_ID,
        uuid::Uuid::now_v7().to_string().as_str(),
    );
    h.insert(jiesu_bus::H_TENANT, ev.tenant.as_str());
    bus.js
        .publish_with_headers(
            bus.subject(
                "dispatch",
                &ev.tenant,
                jiesu_proto::dispatch::TicketProgressed::NAME,
            ),
            h,
            prost::Message::encode_to_vec(ev).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_public_steps_are_kept_whatever_order_they_arrive_in() {
    use jiesu_proto::{dispatch::TicketProgressed, intake::TrackTicketRequest};
    let env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    let created = env
        .client
        .clone()
        .create_ticket(authed(&agent, ticket("13800138002")))
        .await
        .unwrap()
        .into_inner();
    let at = |secs: i64| {
        jiesu_proto::time::to_timestamp(chrono::Utc::now() + chrono::TimeDelta::seconds(secs))
    };
    let step = |step: &str, status: &str, secs: i64, reply: &str| TicketProgressed {
        ticket_id: created.id.clone(),
        tenant: "370202".into(),
        tracking_no: created.tracking_no.clone(),
        step: step.into(),
        status: status.into(),
        note: format!("{step}的说明"),
        reply_redacted: reply.into(),
        at: Some(at(secs)),
        ..Default::default()
    };
    // The close overtakes the resolve on the way.
    publish_progress(&env, &step("close", "closed", 20, "")).await;
    publish_progress(&env, &step("resolve", "resolved", 10, "已处理")).await;
    let public = PublicIntakeServiceClient::new(env.channel.clone());
    let t = jiesu_testkit::wait_until(Duration::from_secs(10), "both steps", || {
        let mut public = public.clone();
        let req = TrackTicketRequest {
            tracking_no: created.tracking_no.clone(),
            phone_last4: "8002".into(),
        };
        async move {
            let t = public.track_ticket(req).await.ok()?.into_inner();
            (t.timeline.len() == 3).then_some(t)
        }
    })
    .await;
    assert_eq!(t.status, "closed", "the later step wins");
    assert_eq!(t.reply, "已处理");
    let events: Vec<&str> = t.timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["received", "resolve", "close"]);
    // A reopen after it takes the reply back and opens the ticket again.
    publish_progress(&env, &step("reopen", "dispatched", 30, "")).await;
    let t = jiesu_testkit::wait_until(Duration::from_secs(10), "the reopen", || {
        let req = TrackTicketRequest {
            tracking_no: created.tracking_no.clone(),
            phone_last4: "8002".into(),
        };
        let mut public = public.clone();
        async move {
            let t = public.track_ticket(req).await.ok()?.into_inner();
            (t.status == "dispatched").then_some(t)
        }
    })
    .await;
    assert_eq!(t.reply, "");
}

#[tokio::test]
async fn a_lookup_by_phone_is_recorded_without_the_phone() {
    use jiesu_proto::intake::ListTicketsRequest;
    let env = start().await;
    let agent = env.kit.keys.token("370202", &[Role::Agent], "agent-1");
    env.client
        .clone()
        .create_ticket(authed(&agent, ticket("13800138003")))
        .await
        .unwrap();
    let found = env
        .client
        .clone()
        .list_tickets(authed(
            &agent,
            ListTicketsRequest {
                phone: "138-0013-8003".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.tickets.len(), 1);
    assert_eq!(found.tickets[0].phone, "138****8003");
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM lookup_reads WHERE reader = 'agent-1' AND found = 1")
            .await,
        1
    );
    assert_eq!(
        env.db
            .count(
                "SELECT count(*) FROM lookup_reads WHERE lookup_reads::text LIKE '%13800138003%'"
            )
            .await,
        0,
        "the phone itself is not kept"
    );
    // A lookup by tracking number reads no caller's history: not recorded.
    env.client
        .clone()
        .list_tickets(authed(
            &agent,
            ListTicketsRequest {
                tracking_no: found.tickets[0].tracking_no.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(env.db.count("SELECT count(*) FROM lookup_reads").await, 1);
}
