//! The duplicate check (并件) against 2,000,000 stored tickets, and
//! PostgreSQL pg_trgm similarity on the same data in the same run.
//!
//! ```text
//! cargo bench -p jiesu-intake --bench duplicate_check -- [--tickets 2000000] [--queries 1000] [--fresh]
//! ```
//!
//! Builds (once; reused while it holds the asked number of tickets) the
//! database `jiesu_bench_duplicates_<tickets>` on the server of
//! `JIESU_BENCH_DATABASE_URL` (default: `JIESU_TEST_DATABASE_URL`, then
//! `postgres://postgres@127.0.0.1:5432`) with intake's own schema, fills it
//! with generated tickets spread over two years (Chinese texts composed from
//! 30 roads × 200 house numbers × 40 problems × 10 details, 400,000
//! callers), and adds a pg_trgm GIN index on the text.
//!
//! Then, one query at a time: half the queries are a caller repeating a
//! ticket of the last three days in other words (the original must be
//! found), half are new problems. Each is answered by intake's check
//! (`api::duplicates::find`: window look-ups + scoring in Rust) and by
//! pg_trgm (`content % $1` ordered by `similarity`), once restricted to the
//! same 7-day window and once over the whole history. Prints latency
//! percentiles and how many repeats each found.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use jiesu_db::DbConfig;
use jiesu_intake::{api::duplicates::find, domain::duplicates::Report};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

/// Every failure ends the run with its message (no panics).
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TENANT: &str = "370202";
const WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
const CHUNK: i64 = 100_000;

const ROADS: &[&str] = &[
    "燕儿岛路",
    "香港中路",
    "东海西路",
    "南京路",
    "福州路",
    "宁夏路",
    "山东路",
    "延安三路",
    "闽江路",
    "云霄路",
    "镇江路",
    "徐州路",
    "湛山路",
    "太平角一路",
    "正阳关路",
    "江西路",
    "金门路",
    "漳州路",
    "珠海路",
    "逍遥路",
    "莱阳路",
    "四川路",
    "观海路",
    "中山路",
    "湖北路",
    "曲阜路",
    "广西路",
    "大学路",
    "鱼山路",
    "福山路",
];

const PROBLEMS: &[&str] = &[
    "楼下烧烤店油烟扰民",
    "夜间施工噪音影响休息",
    "井盖缺失存在安全隐患",
    "路灯不亮",
    "小区垃圾清运不及时",
    "楼道堆放杂物",
    "违章停车堵塞消防通道",
    "共享单车乱停放",
    "下水道堵塞污水外溢",
    "自来水水压低",
    "冬季供暖温度不达标",
    "电梯经常故障停运",
    "物业费收费不合理",
    "小区绿化无人养护",
    "道路坑洼不平",
    "人行道砖块松动",
    "广场舞音响声音过大",
    "商铺占道经营",
    "外卖电动车乱停",
    "公交站台破损",
    "红绿灯时间过短",
    "学校门口交通拥堵",
    "流浪狗伤人",
    "楼上漏水",
    "房屋外墙脱落",
    "燃气管道有异味",
    "违建搭建阳台",
    "餐馆排污",
    "装修垃圾乱倒",
    "公厕卫生差",
    "停车场乱收费",
    "农贸市场秤不准",
    "网约车绕路",
    "快递丢件",
    "培训机构退费难",
    "医院挂号难",
    "社保卡补办慢",
    "公积金提取问题",
    "养老金发放延迟",
    "老旧小区改造进度慢",
];

const DETAILS: &[&str] = &[
    "，晚上十点以后更严重",
    "，已经持续一个多月",
    "，多次反映没有解决",
    "，希望尽快处理",
    "，老人孩子出行不便",
    "，周末尤其明显",
    "，邻居们意见很大",
    "，存在安全隐患",
    "，请相关部门管一管",
    "，影响正常生活",
];

struct Args {
    tickets: i64,
    queries: usize,
    fresh: bool,
}

fn args() -> Res<Args> {
    let mut a = Args {
        tickets: 2_000_000,
        queries: 1000,
        fresh: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tickets" => {
                a.tickets = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--tickets takes a number")?;
            }
            "--queries" => {
                a.queries = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--queries takes a number")?;
            }
            "--fresh" => a.fresh = true,
            // cargo bench passes --bench
            _ => {}
        }
    }
    Ok(a)
}

fn sql_array(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("ARRAY[{}]", quoted.join(","))
}

async fn exec(db: &DatabaseConnection, sql: &str) -> Res<()> {
    db.execute_unprepared(sql)
        .await
        .map_err(|e| format!("{e}: {sql}"))?;
    Ok(())
}

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> Res<i64> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .ok_or_else(|| format!("no row: {sql}"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn prepare(server: &str, a: &Args) -> Res<DatabaseConnection> {
    let name = format!("jiesu_bench_duplicates_{}", a.tickets);
    let cfg = DbConfig {
        url: server.to_owned(),
        max_connections: 2,
        min_connections: 0,
        ..DbConfig::default()
    };
    let admin = jiesu_db::connect(&jiesu_db::with_database(server, "postgres")?, &cfg).await?;
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await?
        .is_some();
    let url = jiesu_db::with_database(server, &name)?;
    if exists && !a.fresh {
        let db = jiesu_db::connect(&url, &cfg).await?;
        let n = scalar_i64(&db, "SELECT count(*) FROM tickets").await?;
        let trgm = scalar_i64(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'bench_tickets_content_trgm'",
        )
        .await?;
        if n == a.tickets && trgm == 1 {
            println!("reusing {name}: {n} tickets");
            return Ok(db);
        }
        drop(db);
    }
    exec(
        &admin,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await?;
    exec(&admin, &format!("CREATE DATABASE \"{name}\"")).await?;
    jiesu_db::migrate::<jiesu_intake::Migrations>(&url, &cfg).await?;
    let db = jiesu_db::connect(&url, &cfg).await?;
    exec(&db, "SET synchronous_commit = off").await?;
    let t0 = Instant::now();
    let roads = sql_array(ROADS);
    let problems = sql_array(PROBLEMS);
    let details = sql_array(DETAILS);
    let span_secs = 730 * 24 * 3600_i64;
    let mut from = 0;
    while from < a.tickets {
        let to = (from + CHUNK).min(a.tickets) - 1;
        // h(k): a deterministic pseudo-random non-negative number per row.
        let sql = format!(
            "WITH g AS (SELECT i, \
                 abs(hashint8(i * 7 + 1)) AS h1, abs(hashint8(i * 7 + 2)) AS h2, \
                 abs(hashint8(i * 7 + 3)) AS h3, abs(hashint8(i * 7 + 4)) AS h4, \
                 abs(hashint8(i * 7 + 5)) AS h5, abs(hashint8(i * 7 + 6)) AS h6 \
               FROM generate_series({from}::bigint, {to}::bigint) AS i), \
             r AS (SELECT i, h1 % {nr} AS road, h2 % 200 + 1 AS num, h3 % {np} AS problem, \
                 h4 % {nd} AS detail, h5 % 400000 AS caller, \
                 (SELECT max_at FROM (SELECT timestamptz '2026-11-01 00:00+08' AS max_at) m) \
                   - make_interval(secs => (h6 % {span_secs})::double precision) AS at \
               FROM g) \
             INSERT INTO tickets (id, tenant, region_code, tracking_no, status, channel, nature, \
                 category, urgency, content, content_enc, lat, lon, citizen_phone_bidx, \
                 address_bidx, submitter_sub, submitter_role, created_at, updated_at) \
             SELECT gen_random_uuid(), '{TENANT}', '{TENANT}', 'B-' || i, \
                 CASE WHEN at > timestamptz '2026-10-01 00:00+08' AND i % 10 <> 0 \
                      THEN 'received' ELSE 'closed' END, \
                 'hotline', 'complaint', 'C' || lpad(problem::text, 2, '0'), 'normal', \
                 ({roads})[road + 1] || num || '号' || ({problems})[problem + 1] \
                   || ({details})[detail + 1], \
                 'bench', 36.04 + road * 0.002 + num * 0.00001, 120.30 + road * 0.004, \
                 'p' || caller, 'a' || road || '-' || num, 'bench', 'agent', at, at \
             FROM r",
            nr = ROADS.len(),
            np = PROBLEMS.len(),
            nd = DETAILS.len(),
        );
        exec(&db, &sql).await?;
        from = to + 1;
        println!("  generated {from} tickets ({:.0?})", t0.elapsed());
    }
    let generated = t0.elapsed();
    exec(&db, "CREATE EXTENSION IF NOT EXISTS pg_trgm").await?;
    let t1 = Instant::now();
    exec(
        &db,
        "CREATE INDEX bench_tickets_content_trgm ON tickets USING gin (content gin_trgm_ops)",
    )
    .await?;
    let trgm_index = t1.elapsed();
    exec(&db, "VACUUM ANALYZE tickets").await?;
    println!(
        "generated {} tickets in {generated:.1?} (intake's schema and indexes); pg_trgm GIN index built in {trgm_index:.1?}",
        a.tickets
    );
    Ok(db)
}

/// A small deterministic generator for the queries.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

struct Query {
    report: Report,
    /// The ticket a repeat repeats.
    original: Option<uuid::Uuid>,
}

async fn queries(db: &DatabaseConnection, n: usize, now: DateTime<Utc>) -> Res<Vec<Query>> {
    let repeats = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, content, category, lat, lon, citizen_phone_bidx, address_bidx \
             FROM tickets WHERE tenant = $1 AND status = 'received' AND created_at > $2 \
             ORDER BY hashtext(id::text) LIMIT $3",
            [
                TENANT.into(),
                (now - TimeDelta::days(3)).into(),
                i64::try_from(n / 2)?.into(),
            ],
        ))
        .await?;
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rephrase = ["还是", "又发现", "再次反映：", "我之前说过，"];
    for r in &repeats {
        let content: String = r.try_get("", "content")?;
        out.push(Query {
            report: Report {
                text: format!("{}{content}", rephrase[out.len() % rephrase.len()]),
                category: r.try_get("", "category")?,
                point: r
                    .try_get::<Option<f64>>("", "lat")?
                    .zip(r.try_get::<Option<f64>>("", "lon")?),
                address_key: r.try_get("", "address_bidx")?,
                caller_key: r.try_get("", "citizen_phone_bidx")?,
                at: now,
            },
            original: Some(r.try_get("", "id")?),
        });
    }
    while out.len() < n {
        let p = (rng.next() % PROBLEMS.len() as u64) as usize;
        let road = rng.pick(ROADS);
        out.push(Query {
            report: Report {
                text: format!(
                    "{road}{}号附近{}{}",
                    rng.next() % 300 + 1,
                    PROBLEMS[p],
                    rng.pick(DETAILS)
                ),
                category: format!("C{p:02}"),
                point: None,
                address_key: None,
                caller_key: Some(format!("new-{}", out.len())),
                at: now,
            },
            original: None,
        });
    }
    Ok(out)
}

fn excluded() -> Vec<String> {
    ["answered", "withdrawn", "resolved", "closed", "merged"]
        .map(str::to_owned)
        .to_vec()
}

async fn trgm(db: &DatabaseConnection, q: &Report, window: bool) -> Res<Vec<uuid::Uuid>> {
    let (sql, values): (&str, Vec<Value>) = if window {
        (
            "SELECT id FROM tickets WHERE tenant = $1 AND content % $2 \
               AND created_at >= $3 AND created_at <= $4 AND NOT (status = ANY($5)) \
             ORDER BY similarity(content, $2) DESC LIMIT 10",
            vec![
                TENANT.into(),
                q.text.clone().into(),
                (q.at - TimeDelta::from_std(WINDOW)?).into(),
                q.at.into(),
                excluded().into(),
            ],
        )
    } else {
        (
            "SELECT id FROM tickets WHERE tenant = $1 AND content % $2 \
             ORDER BY similarity(content, $2) DESC LIMIT 10",
            vec![TENANT.into(), q.text.clone().into()],
        )
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?)
}

struct Stats {
    name: &'static str,
    took: Vec<Duration>,
    found: usize,
    repeats: usize,
}

impl Stats {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            took: Vec::new(),
            found: 0,
            repeats: 0,
        }
    }
    fn record(&mut self, took: Duration, q: &Query, ids: &[uuid::Uuid]) {
        self.took.push(took);
        if let Some(o) = q.original {
            self.repeats += 1;
            if ids.contains(&o) {
                self.found += 1;
            }
        }
    }
    fn print(&mut self) {
        self.took.sort();
        let p = |q: f64| {
            let i = ((self.took.len() as f64 * q).ceil() as usize).clamp(1, self.took.len()) - 1;
            self.took[i].as_secs_f64() * 1000.0
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} |",
            self.name,
            self.took.len(),
            p(0.5),
            p(0.95),
            p(0.99),
            p(1.0),
            self.found,
            self.repeats
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let a = args()?;
    let server = std::env::var("JIESU_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("JIESU_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let db = prepare(&server, &a).await?;
    let now: DateTime<Utc> = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT max(created_at) + interval '1 minute' AS at FROM tickets",
        ))
        .await?
        .ok_or("no tickets")?
        .try_get("", "at")?;
    let in_window = scalar_i64(
        &db,
        &format!(
            "SELECT count(*) FROM tickets WHERE created_at >= timestamptz '{}' - interval '7 days'",
            now.to_rfc3339()
        ),
    )
    .await?;
    let trigrams = scalar_i64(
        &db,
        "SELECT cardinality(show_trgm('燕儿岛路10号楼下烧烤店油烟扰民'))::bigint",
    )
    .await?;
    println!(
        "{} tickets, {in_window} in the 7-day window; pg_trgm extracts {trigrams} trigrams from '燕儿岛路10号楼下烧烤店油烟扰民'",
        a.tickets
    );
    let qs = queries(&db, a.queries, now).await?;
    // Warm the caches for all three.
    for q in qs.iter().take(20) {
        find(&db, WINDOW, TENANT, &q.report, None).await?;
        trgm(&db, &q.report, true).await?;
        trgm(&db, &q.report, false).await?;
    }
    let mut ours = Stats::new("intake check (window look-ups + Rust scoring)");
    let mut windowed = Stats::new("pg_trgm `%` + similarity, same 7-day window");
    let mut history = Stats::new("pg_trgm `%` + similarity, whole history");
    // The whole-history variant is slow: a tenth of the queries suffice.
    let history_every = 10;
    for (i, q) in qs.iter().enumerate() {
        let t = Instant::now();
        let found = find(&db, WINDOW, TENANT, &q.report, None).await?;
        let took = t.elapsed();
        let ids: Vec<uuid::Uuid> = found
            .candidates
            .iter()
            .map(|c| c.ticket_id.parse())
            .collect::<Result<_, _>>()?;
        ours.record(took, q, &ids);
        let t = Instant::now();
        let ids = trgm(&db, &q.report, true).await?;
        windowed.record(t.elapsed(), q, &ids);
        if i % history_every == 0 {
            let t = Instant::now();
            let ids = trgm(&db, &q.report, false).await?;
            history.record(t.elapsed(), q, &ids);
        }
    }
    println!();
    println!("| method | queries | p50 ms | p95 ms | p99 ms | max ms | repeats found |");
    println!("|---|---|---|---|---|---|---|");
    ours.print();
    windowed.print();
    history.print();
    Ok(())
}
