//! Splits and merges with their history and "as of" lookups, pairs and
//! the building registry.

use chrono::{DateTime, Utc};
use jiesu_auth::Role;
use jiesu_proto::{
    grid::{
        BuildingsCsv, GetGridRequest, GridDetail, LocateRequest, LocateResponse, MergeGridsRequest,
        PairsCsv, SplitGridRequest,
    },
    time::{from_timestamp, to_timestamp},
};
use tonic::Code;

use crate::helpers::{Grid, ZS, authed, layer, refusal, refused, square, two_grids, worker};

async fn locate_as_of(
    g: &Grid,
    token: &str,
    lon: f64,
    as_of: Option<DateTime<Utc>>,
) -> LocateResponse {
    g.c()
        .locate(authed(
            token,
            LocateRequest {
                lat: 36.065,
                lon,
                as_of: as_of.map(to_timestamp),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn detail(g: &Grid, token: &str, code: &str) -> GridDetail {
    g.c()
        .get_grid(authed(token, GetGridRequest { code: code.into() }))
        .await
        .unwrap()
        .into_inner()
}

fn code(r: &LocateResponse) -> Option<&str> {
    r.grid.as_ref().map(|g| g.code.as_str())
}

#[tokio::test]
async fn a_split_keeps_history_and_as_of_lookups_answer_with_the_old_grid() {
    let g = Grid::start().await;
    two_grids(&g).await;
    let admin = g.admin();
    worker(&g, "gw-1", "王海燕", "G1").await;
    let gw = g.token(Role::GridWorker, "gw-1");
    let split = |token: &str, parts: String| {
        let mut c = g.c();
        let req = authed(
            token,
            SplitGridRequest {
                code: "G1".into(),
                parts_geojson: parts,
            },
        );
        async move { c.split_grid(req).await }
    };

    // Parts that leave a gap, reach outside, or reuse a grid's code.
    let (code_, _, field, msg) = refusal(
        split(
            &admin,
            layer(vec![
                square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
                square("G1-B", "", ZS, 120.391, 36.06, 120.40, 36.07),
            ]),
        )
        .await,
    );
    assert_eq!(
        (code_, field.as_deref()),
        (Code::InvalidArgument, Some("parts_geojson"))
    );
    assert!(msg.contains("必须完整覆盖"), "{msg}");
    let (_, _, _, msg) = refusal(
        split(
            &admin,
            layer(vec![
                square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
                square("G2", "", ZS, 120.39, 36.06, 120.41, 36.07),
            ]),
        )
        .await,
    );
    assert!(
        msg.contains("超出了网格 G1 的范围") && msg.contains("已是现有网格"),
        "{msg}"
    );
    assert_eq!(
        refused(split(&gw, layer(vec![])).await),
        (Code::PermissionDenied, None)
    );

    let change = split(
        &admin,
        layer(vec![
            square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
            square("G1-B", "", ZS, 120.39, 36.06, 120.40, 36.07),
        ]),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        (change.ended.clone(), change.created.clone()),
        (
            vec!["G1".to_owned()],
            vec!["G1-A".to_owned(), "G1-B".to_owned()]
        )
    );
    let at = change.at.as_ref().and_then(from_timestamp).unwrap();

    let now = locate_as_of(&g, &gw, 120.385, None).await;
    assert_eq!(code(&now), Some("G1-A"));
    assert_eq!(now.staff[0].name, "王海燕", "the worker serves the parts");
    assert_eq!(now.staff[0].phone_masked, "138****8000");
    let before = at - chrono::Duration::milliseconds(1);
    let then = locate_as_of(&g, &gw, 120.385, Some(before)).await;
    assert_eq!(code(&then), Some("G1"), "as of before the split");
    assert_eq!(then.community_code, ZS);
    assert!(then.staff.is_empty(), "an as-of answer lists no staff");
    let at_split = locate_as_of(&g, &gw, 120.395, Some(at)).await;
    assert_eq!(code(&at_split), Some("G1-B"));
    let long_ago = at - chrono::Duration::days(365);
    assert!(
        locate_as_of(&g, &gw, 120.385, Some(long_ago))
            .await
            .grid
            .is_none()
    );

    let old = detail(&g, &gw, "G1").await;
    let last = &old.history[0];
    assert_eq!(
        (last.ended_by.as_str(), last.successors.clone()),
        ("split", vec!["G1-A".to_owned(), "G1-B".to_owned()])
    );
    assert!(old.geometry.is_empty(), "G1 no longer exists");
    assert!(old.staff.is_empty());
    assert_eq!(
        detail(&g, &gw, "G1-B").await.history[0].predecessors,
        ["G1"]
    );
    let never = g
        .c()
        .get_grid(authed(
            &gw,
            GetGridRequest {
                code: "NOPE".into(),
            },
        ))
        .await;
    assert_eq!(refused(never), (Code::NotFound, None));

    // Merge the parts back under a new code; grids of another community refuse.
    let merge = |codes: &[&str], code: &str, name: &str| {
        let mut c = g.c();
        let req = authed(
            &admin,
            MergeGridsRequest {
                codes: codes.iter().map(|c| (*c).to_owned()).collect(),
                code: code.into(),
                name: name.into(),
            },
        );
        async move { c.merge_grids(req).await }
    };
    assert_eq!(
        refused(merge(&["G1-A", "G3"], "M", "").await),
        (Code::InvalidArgument, Some("codes".into()))
    );
    // Merged back under one of the parts' codes: the code goes on, with a
    // new version, and keeps its worker.
    merge(&["G1-A", "G1-B"], "G1-A", "燕儿岛合并网格")
        .await
        .unwrap();
    let now = locate_as_of(&g, &gw, 120.395, None).await;
    let grid = now.grid.clone().unwrap();
    assert_eq!(
        (grid.code.as_str(), grid.name.as_str()),
        ("G1-A", "燕儿岛合并网格")
    );
    assert_eq!(
        now.staff[0].name, "王海燕",
        "the kept code keeps its worker"
    );
    let versions = detail(&g, &gw, "G1-A").await.history;
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (versions[0].ended_by.as_str(), versions[1].cause.as_str()),
        ("merged", "merge")
    );
    assert_eq!(versions[1].predecessors, ["G1-A", "G1-B"]);
    let between = locate_as_of(&g, &gw, 120.395, Some(at)).await;
    assert_eq!(
        code(&between),
        Some("G1-B"),
        "as of the split, before the merge"
    );

    assert_eq!(g.published("grid.split").await, 1);
    assert_eq!(g.published("grid.merged").await, 1);
    assert!(g.published("worker.assigned").await >= 1);
}

#[tokio::test]
async fn pairs_and_the_building_registry_locate_without_coordinates() {
    let g = Grid::start().await;
    two_grids(&g).await;
    let admin = g.admin();
    g.import(vec![square(
        "JG-1",
        "professional",
        ZS,
        120.38,
        36.06,
        120.42,
        36.08,
    )])
    .await;
    let pairs = |csv: &str| {
        let mut c = g.c();
        let req = authed(&admin, PairsCsv { csv: csv.into() });
        async move { c.import_pairs(req).await }
    };
    let (code_, _, field, msg) =
        refusal(pairs("professional_code,basic_code\nJG-1,G1\nG2,JG-1\nJG-1,NOPE\n").await);
    assert_eq!(
        (code_, field.as_deref()),
        (Code::InvalidArgument, Some("csv"))
    );
    assert!(
        msg.contains("第 3 行：G2 不是专业网格") && msg.contains("NOPE"),
        "{msg}"
    );
    let done = pairs("professional_code,basic_code\nJG-1,G1\nJG-1,G2\nJG-1,G3\n")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.pairs, 3);
    let dispatcher = g.token(Role::Dispatcher, "d-1");
    assert_eq!(detail(&g, &dispatcher, "G1").await.paired, ["JG-1"]);
    assert_eq!(
        detail(&g, &dispatcher, "JG-1").await.paired,
        ["G1", "G2", "G3"]
    );

    let buildings = |csv: &str| {
        let mut c = g.c();
        let req = authed(&admin, BuildingsCsv { csv: csv.into() });
        async move { c.import_buildings(req).await }
    };
    let done = buildings(
        "code,address,lat,lon\nB-8,市南区燕儿岛路8号,36.0611,120.3801\nB-FAR,崂山区某路1号,36.2,120.6\n",
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(done.buildings, 2);
    assert_eq!(
        done.outside,
        ["B-FAR"],
        "a building outside every grid is named"
    );
    assert_eq!(
        refused(buildings("code,address\nB-1,x\n").await),
        (Code::InvalidArgument, Some("csv".into()))
    );
    let by_address = |address: &str| {
        let mut c = g.c();
        let req = authed(
            &dispatcher,
            LocateRequest {
                address: address.into(),
                ..Default::default()
            },
        );
        async move { c.locate(req).await }
    };
    let at = by_address("市南区 燕儿岛路８号3单元502")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&at), Some("G1"));
    assert_eq!(
        (at.building_code.as_str(), at.building_address.as_str()),
        ("B-8", "市南区燕儿岛路8号")
    );
    assert_eq!(at.professional[0].code, "JG-1");
    let (code_, jiesu_code, field, _) = refusal(by_address("火星路1号").await);
    assert_eq!(
        (code_, jiesu_code.as_str(), field.as_deref()),
        (Code::NotFound, "address_unknown", Some("address"))
    );
}
