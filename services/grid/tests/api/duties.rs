//! Duty rules, generated tasks, check-ins at the place and compliance.

use jiesu_auth::Role;
use jiesu_proto::grid::{
    CheckInRequest, DutyComplianceRequest, DutyRule, DutyRules, GenerateDutiesRequest,
    GetDutyRulesRequest, Household, KeyPerson, ListDutyTasksRequest,
};
use tonic::Code;

use crate::helpers::{Grid, ZS, authed, refusal, refused, square, two_grids, worker};

/// A 1×1 PNG.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn check_in(task_id: &str, lat: f64, lon: f64) -> CheckInRequest {
    CheckInRequest {
        task_id: task_id.into(),
        lat,
        lon,
        ..Default::default()
    }
}

#[tokio::test]
async fn duties_are_generated_and_a_check_in_outside_the_grid_is_refused() {
    let g = Grid::start().await;
    two_grids(&g).await;
    let admin = g.admin();
    g.import(vec![square(
        "XX-1",
        "dedicated",
        ZS,
        120.385,
        36.062,
        120.386,
        36.063,
    )])
    .await;
    let worker_id = worker(&g, "gw-1", "王海燕", "G1").await;
    let gw1 = g.token(Role::GridWorker, "gw-1");
    g.c()
        .save_household(authed(
            &gw1,
            Household {
                grid_code: "G1".into(),
                room: "101".into(),
                head_name: "赵一".into(),
                phone: "13700000001".into(),
                members: 3,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    g.c()
        .save_key_person(authed(
            &gw1,
            KeyPerson {
                grid_code: "G1".into(),
                category: "disabled".into(),
                name: "钱二".into(),
                active: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    let rules = g
        .c()
        .get_duty_rules(authed(&admin, GetDutyRulesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rules.rules.len(), 5, "the default rules");
    let fortnightly = DutyRules {
        rules: vec![DutyRule {
            code: "x".into(),
            name: "x".into(),
            target: "household".into(),
            every: "fortnight".into(),
            ..Default::default()
        }],
    };
    assert_eq!(
        refused(g.c().save_duty_rules(authed(&admin, fortnightly)).await),
        (Code::InvalidArgument, Some("rules[0].every".into()))
    );

    let generate = || {
        let mut c = g.c();
        let req = authed(&admin, GenerateDutiesRequest::default());
        async move { c.generate_duties(req).await.unwrap().into_inner().created }
    };
    // G1: its household (monthly), its key person (四必访, weekly), the
    // school inside it (daily), its patrol (weekly); G2, G3: patrols.
    assert_eq!(generate().await, 6);
    assert_eq!(generate().await, 0, "generating twice creates nothing more");

    let tasks = g
        .c()
        .list_duty_tasks(authed(&gw1, ListDutyTasksRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let mut kinds: Vec<&str> = tasks.iter().map(|t| t.target_kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["household", "key_person", "key_place", "patrol"]);
    let labels: Vec<&str> = tasks.iter().map(|t| t.target_label.as_str()).collect();
    assert!(labels.contains(&"重点人员走访（残疾人）"), "{labels:?}");
    assert!(labels.contains(&"重点场所巡查（XX-1网格）"), "{labels:?}");
    let household = tasks
        .iter()
        .find(|t| t.target_kind == "household")
        .unwrap()
        .id
        .clone();
    let send = |token: &str, req: CheckInRequest| {
        let mut c = g.c();
        let req = authed(token, req);
        async move { c.check_in(req).await }
    };

    // 1 km east of the grid: refused, naming the distance.
    let far = CheckInRequest {
        note: "已走访".into(),
        ..check_in(&household, 36.065, 120.411)
    };
    let (code, _, field, msg) = refusal(send(&gw1, far).await);
    assert_eq!(
        (code, field.as_deref()),
        (Code::InvalidArgument, Some("position"))
    );
    assert!(msg.contains("在网格 G1 之外"), "{msg}");
    // Not an image grid accepts.
    let gif = CheckInRequest {
        photo: b"GIF89a".to_vec(),
        ..check_in(&household, 36.065, 120.385)
    };
    assert_eq!(
        refused(send(&gw1, gif).await),
        (Code::InvalidArgument, Some("photo".into()))
    );
    assert_eq!(
        refused(send(&gw1, check_in(&household, 91.0, 120.385)).await),
        (Code::InvalidArgument, Some("lat".into()))
    );
    // Another grid's worker may not.
    worker(&g, "gw-3", "李强", "G3").await;
    let gw3 = g.token(Role::GridWorker, "gw-3");
    let (code, jiesu_code, _, _) = refusal(send(&gw3, check_in(&household, 36.065, 120.385)).await);
    assert_eq!(
        (code, jiesu_code.as_str()),
        (Code::PermissionDenied, "not_your_grid")
    );
    // 20 m north of the edge, with a PNG: within the tolerance.
    let near = CheckInRequest {
        note: "已入户走访，家中无异常".into(),
        photo: PNG.to_vec(),
        ..check_in(&household, 36.07018, 120.385)
    };
    let done = send(&gw1, near).await.unwrap().into_inner();
    assert!(done.done_at.is_some() && done.has_photo);
    assert_eq!(done.done_by, "gw-1");
    assert!(
        (15.0..25.0).contains(&done.distance_m),
        "{}",
        done.distance_m
    );
    let (code, jiesu_code, _, _) = refusal(send(&gw1, check_in(&household, 36.065, 120.385)).await);
    assert_eq!(
        (code, jiesu_code.as_str()),
        (Code::FailedPrecondition, "already_done")
    );

    let period = jiesu_common::time::in_china(chrono::Utc::now())
        .format("%Y-%m")
        .to_string();
    let supervisor = g.token(Role::Supervisor, "sup-1");
    let compliance = |token: &str, period: &str, by: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            DutyComplianceRequest {
                period: period.into(),
                by: by.into(),
            },
        );
        async move { c.duty_compliance(req).await }
    };
    let by_grid = compliance(&supervisor, &period, "grid")
        .await
        .unwrap()
        .into_inner()
        .rows;
    let g1 = by_grid.iter().find(|r| r.key == "G1").unwrap();
    assert_eq!((g1.done, g1.on_time), (1, 1), "{by_grid:?}");
    let by_worker = compliance(&supervisor, &period, "worker")
        .await
        .unwrap()
        .into_inner()
        .rows;
    let me = by_worker.iter().find(|r| r.key == worker_id).unwrap();
    assert_eq!((me.name.as_str(), me.done), ("王海燕", 1));
    assert_eq!(
        refused(compliance(&supervisor, "last-month", "").await),
        (Code::InvalidArgument, Some("period".into()))
    );
    assert_eq!(
        refused(compliance(&supervisor, &period, "street").await),
        (Code::InvalidArgument, Some("by".into()))
    );
    assert_eq!(
        refused(compliance(&gw1, &period, "").await),
        (Code::PermissionDenied, None)
    );
}
