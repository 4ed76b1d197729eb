//! Delivery throughput: messages from the event that causes them to the
//! moment a provider has them, through the HTTP SMS adapter and through
//! SMTP, each beside its anchor (the same server fed directly by a plain
//! client), and a broadcast to many grids' residents' groups.
//!
//! ```text
//! cargo bench -p jiesu-notification --bench delivery -- [--messages 100000] [--mails 100000] [--broadcast 10000]
//! ```
//!
//! 1. HTTP: `--messages` `ticket.dispatched` events, to 1,000 units whose
//!    SMS numbers are in the directory, are published to JetStream as fast
//!    as it takes them; a notification target (fresh database) routes units
//!    to an `http_sms` channel pointed at a local HTTP server, which notes
//!    when each message arrives. Printed: messages a second (first publish
//!    to last arrival) and p50/p99 from each event's publish to its
//!    arrival. Anchor: the same number of POSTs straight from one reqwest
//!    client, 32 at a time, to the same server.
//! 2. SMTP: the same with `--mails` events routed to an `smtp` channel and
//!    a real SMTP server (aiosmtpd, as in the tests); anchor: lettre
//!    sending the same number of messages to it directly, 32 at a time.
//!    Arrivals are read off the server's file every 100 ms.
//! 3. Broadcast: one `broadcast.requested` naming `--broadcast` grids,
//!    routed to a signed webhook; the time until the last grid's message
//!    arrived.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, extract::State, routing::post};
use futures::StreamExt;
use jiesu_auth::Role;
use jiesu_bus::{Bus, H_MSG_ID, H_TENANT};
use jiesu_notification::{
    NotificationTarget,
    channels::{ChannelConfig, Secret},
};
use jiesu_proto::{
    Event,
    dispatch::TicketDispatched,
    grid::BroadcastRequested,
    notification::{
        SetRecipientAddressesRequest, notification_service_client::NotificationServiceClient,
    },
};
use jiesu_testkit::{SmtpSink, TestEnv};
use prost::Message;
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const UNITS: usize = 1000;

struct Args {
    messages: usize,
    mails: usize,
    broadcast: usize,
}

fn args() -> Res<Args> {
    let mut a = Args {
        messages: 100_000,
        mails: 100_000,
        broadcast: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--messages" => a.messages = val()?.parse()?,
            "--mails" => a.mails = val()?.parse()?,
            "--broadcast" => a.broadcast = val()?.parse()?,
            _ => {}
        }
    }
    Ok(a)
}

/// Arrival time of each message by its number (`B-<n>` in its text).
type Arrivals = Arc<Mutex<HashMap<usize, Instant>>>;

fn number_in(text: &str) -> Option<usize> {
    let at = text.find("B-")?;
    let digits: String = text[at + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn receive(State(seen): State<Arrivals>, body: String) -> &'static str {
    let now = Instant::now();
    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
    // A broadcast's message has no number: counted by a running one.
    let k = number_in(&body).unwrap_or(usize::MAX - s.len());
    s.insert(k, now);
    r#"{"code":"0"}"#
}

async fn server(seen: Arrivals) -> Res<String> {
    let app = Router::new().route("/send", post(receive)).with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/send"))
}

fn channel(kind: &str) -> Res<ChannelConfig> {
    Ok(serde_json::from_value(json!({ "kind": kind }))?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn publish_dispatched(bus: &Bus, tenant: &str, n: usize) -> Res<Vec<Instant>> {
    let mut published = Vec::with_capacity(n);
    let mut acks = Vec::with_capacity(1000);
    for i in 0..n {
        let ev = TicketDispatched {
            ticket_id: uuid::Uuid::now_v7().to_string(),
            work_order_id: uuid::Uuid::now_v7().to_string(),
            tenant: tenant.into(),
            region_code: tenant.into(),
            tracking_no: format!("B-{i}"),
            category: "SC01".into(),
            category_name: "预付卡消费".into(),
            unit_id: format!("u{}", i % UNITS),
            unit_name: format!("单位{}", i % UNITS),
            ..Default::default()
        };
        let mut h = async_nats::HeaderMap::new();
        h.insert(H_MSG_ID, uuid::Uuid::now_v7().to_string().as_str());
        h.insert(H_TENANT, tenant);
        published.push(Instant::now());
        acks.push(
            bus.js
                .publish_with_headers(
                    bus.subject("dispatch", tenant, TicketDispatched::NAME),
                    h,
                    ev.encode_to_vec().into(),
                )
                .await?,
        );
        if acks.len() == 1000 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks {
        a.await?;
    }
    Ok(published)
}

/// Waits until every published message arrived, then prints the rate and
/// latencies beside the anchor.
async fn report(
    what: &str,
    arrivals: &Arrivals,
    published: &[Instant],
    anchor_rate: f64,
) -> Res<()> {
    let n = published.len();
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let got = arrivals.lock().map_err(|_| "poisoned")?.len();
        if got >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: only {got} of {n} arrived").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = arrivals.lock().map_err(|_| "poisoned")?.clone();
    let last = seen.values().max().copied().unwrap_or_else(Instant::now);
    let took = last.duration_since(published[0]);
    let mut lat: Vec<Duration> = (0..n)
        .filter_map(|i| seen.get(&i).map(|t| t.duration_since(published[i])))
        .collect();
    lat.sort();
    println!(
        "{what}: {n} messages in {:.1} s = {:.0}/s; event to handed over p50 {:.0} ms, p99 {:.0} ms; anchor (direct client) {:.0}/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        anchor_rate
    );
    Ok(())
}

async fn directory(
    client: &mut NotificationServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Res<()> {
    for u in 0..UNITS {
        let mut req = tonic::Request::new(SetRecipientAddressesRequest {
            recipient_kind: "unit".into(),
            recipient_id: format!("u{u}"),
            sms: Some(format!("139{u:08}")),
            email: Some(format!("u{u}@bench.example.gov.cn")),
            wecom_robot: None,
        });
        jiesu_auth::bearer_metadata(&mut req, token)?;
        client.set_recipient_addresses(req).await?;
    }
    Ok(())
}

async fn http_anchor(url: &str, n: usize) -> Res<f64> {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let results: Vec<Result<reqwest::Response, reqwest::Error>> = futures::stream::iter(0..n)
        .map(|i| {
            http.post(url)
                .json(&json!({"mobile": "13900000000", "content": format!("anchor A-{i}")}))
                .send()
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    Ok(rate)
}

async fn smtp_anchor(port: u16, n: usize) -> Res<f64> {
    use lettre::AsyncTransport;
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
    let mut messages = Vec::with_capacity(n);
    for i in 0..n {
        messages.push(
            lettre::Message::builder()
                .from("bench <bench@example.gov.cn>".parse()?)
                .to(format!("anchor{i}@bench.example.gov.cn").parse()?)
                .subject("锚点")
                .body(format!("anchor A-{i}"))?,
        );
    }
    let t = Instant::now();
    let results: Vec<_> = futures::stream::iter(messages)
        .map(|m| transport.send(m))
        .buffer_unordered(32)
        .collect()
        .await;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    Ok(rate)
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args()?;
    let env = TestEnv::new().await;
    let bus = env.bus.connect().await;
    bus.ensure_stream("dispatch").await?;
    bus.ensure_stream("grid").await?;
    let arrivals: Arrivals = Arc::default();
    let url = server(arrivals.clone()).await?;
    let smtp = SmtpSink::start();

    let mut sms = channel("http_sms")?;
    sms.endpoint = url.clone();
    sms.fields = HashMap::from([
        ("mobile".into(), "{phone}".into()),
        ("content".into(), "{content}".into()),
        ("msgid".into(), "{id}".into()),
    ]);
    sms.success_pointer = "/code".into();
    sms.success_value = "0".into();
    let mut mail = channel("smtp")?;
    mail.host = "127.0.0.1".into();
    mail.port = smtp.port;
    mail.security = "none".into();
    mail.from = "bench <bench@example.gov.cn>".into();
    let mut hook = channel("webhook")?;
    hook.endpoint = url.clone();
    hook.secret = Secret::new("bench-secret");
    let target = env
        .spawn::<NotificationTarget>(|c| {
            c.channels = HashMap::from([
                ("sms".to_owned(), sms),
                ("mail".to_owned(), mail),
                ("hook".to_owned(), hook),
            ]);
            c.routes = HashMap::from([
                (
                    "370202".to_owned(),
                    HashMap::from([
                        ("unit".to_owned(), vec!["sms".to_owned()]),
                        ("grid_group".to_owned(), vec!["hook".to_owned()]),
                    ]),
                ),
                (
                    "370203".to_owned(),
                    HashMap::from([("unit".to_owned(), vec!["mail".to_owned()])]),
                ),
            ]);
            c.quiet_hours = String::new();
        })
        .await;
    let mut client = NotificationServiceClient::connect(target.url()).await?;
    for tenant in ["370202", "370203"] {
        let admin = env.keys.token(tenant, &[Role::TenantAdmin], "bench");
        directory(&mut client, &admin).await?;
    }

    if a.messages > 0 {
        let anchor = http_anchor(&url, a.messages).await?;
        arrivals.lock().map_err(|_| "poisoned")?.clear();
        let published = publish_dispatched(&bus, "370202", a.messages).await?;
        report("http_sms", &arrivals, &published, anchor).await?;
    }

    if a.mails > 0 {
        let anchor = smtp_anchor(smtp.port, a.mails).await?;
        let before = smtp.messages().len();
        let published = publish_dispatched(&bus, "370203", a.mails).await?;
        let mail_arrivals: Arrivals = Arc::default();
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let mails = smtp.messages();
            let now = Instant::now();
            let got = {
                let mut m = mail_arrivals.lock().map_err(|_| "poisoned")?;
                for mail in mails.iter().skip(before) {
                    if let Some(n) = number_in(&mail.body) {
                        m.entry(n).or_insert(now);
                    }
                }
                m.len()
            };
            if got >= a.mails {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("smtp: only {got} of {} arrived", a.mails).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        report("smtp", &mail_arrivals, &published, anchor).await?;
    }

    if a.broadcast > 0 {
        arrivals.lock().map_err(|_| "poisoned")?.clear();
        let ev = BroadcastRequested {
            tenant: "370202".into(),
            id: uuid::Uuid::now_v7().to_string(),
            kind: "notice".into(),
            title: "停水通知".into(),
            body: "明日9:00至17:00停水检修，请提前储水。".into(),
            grid_codes: (0..a.broadcast).map(|g| format!("G{g:05}")).collect(),
            at: None,
        };
        let mut h = async_nats::HeaderMap::new();
        h.insert(H_MSG_ID, uuid::Uuid::now_v7().to_string().as_str());
        h.insert(H_TENANT, "370202");
        let t = Instant::now();
        bus.js
            .publish_with_headers(
                bus.subject("grid", "370202", BroadcastRequested::NAME),
                h,
                ev.encode_to_vec().into(),
            )
            .await?
            .await?;
        let deadline = Instant::now() + Duration::from_secs(3600);
        while arrivals.lock().map_err(|_| "poisoned")?.len() < a.broadcast {
            if Instant::now() > deadline {
                return Err("broadcast did not finish".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "broadcast: {} grids' messages handed over {:.1} s after the event",
            a.broadcast,
            t.elapsed().as_secs_f64()
        );
    }
    drop(target);
    Ok(())
}
