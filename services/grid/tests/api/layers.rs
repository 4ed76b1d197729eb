//! Layers, the division tree and locating a point.

use jiesu_auth::Role;
use jiesu_proto::grid::{
    ExportLayerRequest, ImportLayerRequest, ImportLayerResponse, ListRegionsRequest, LocateRequest,
    LocateResponse, RegionsCsv,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{Grid, ZS, authed, layer, refusal, refused, square};

async fn locate(g: &Grid, token: &str, lat: f64, lon: f64) -> LocateResponse {
    g.c()
        .locate(authed(
            token,
            LocateRequest {
                lat,
                lon,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn import(g: &Grid, geojson: String) -> Result<ImportLayerResponse, tonic::Status> {
    g.c()
        .import_layer(authed(&g.admin(), ImportLayerRequest { geojson }))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_layer_is_imported_exported_and_locates_points() {
    let g = Grid::start().await;
    let done = import(
        &g,
        layer(vec![
            square("G1", "basic", ZS, 120.38, 36.06, 120.39, 36.07),
            square("G2", "basic", ZS, 120.39, 36.06, 120.40, 36.07),
            square("M1", "micro", ZS, 120.381, 36.061, 120.382, 36.062),
            square("P1", "professional", ZS, 120.37, 36.05, 120.41, 36.08),
        ]),
    )
    .await
    .unwrap();
    assert_eq!((done.created, done.updated, done.total), (4, 0, 4));
    let gw = g.token(Role::GridWorker, "gw-1");
    let at = locate(&g, &gw, 36.0615, 120.3815).await;
    let grid = at.grid.clone().unwrap();
    assert_eq!((grid.code.as_str(), grid.name.as_str()), ("G1", "G1网格"));
    assert_eq!(at.micro.unwrap().code, "M1");
    assert_eq!(at.professional[0].code, "P1");
    assert_eq!(
        (
            at.community_code.as_str(),
            at.street_code.as_str(),
            at.county_code.as_str()
        ),
        (ZS, "370202006", "370202")
    );
    assert_eq!(
        locate(&g, &gw, 36.065, 120.395).await.grid.unwrap().code,
        "G2"
    );
    let nowhere = locate(&g, &gw, 36.2, 120.9).await;
    assert!(nowhere.grid.is_none() && nowhere.community_code.is_empty());

    // Re-importing one grid with a new shape updates it.
    let moved = import(
        &g,
        layer(vec![square(
            "G2", "basic", ZS, 120.39, 36.06, 120.41, 36.07,
        )]),
    )
    .await
    .unwrap();
    assert_eq!((moved.updated, moved.total), (1, 4));
    assert_eq!(
        locate(&g, &gw, 36.065, 120.405).await.grid.unwrap().code,
        "G2"
    );

    let exported = g
        .c()
        .export_layer(authed(
            &g.admin(),
            ExportLayerRequest {
                kind: "basic".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let fc: Value = serde_json::from_str(&exported.geojson).unwrap();
    let codes: Vec<&str> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["code"].as_str().unwrap())
        .collect();
    assert_eq!((codes, exported.count), (vec!["G1", "G2"], 2));
    // The export is the import format.
    let again = import(&g, exported.geojson).await.unwrap();
    assert_eq!(again.created, 0);
    let bad_kind = g
        .c()
        .export_layer(authed(
            &g.admin(),
            ExportLayerRequest {
                kind: "round".into(),
            },
        ))
        .await;
    assert_eq!(
        refused(bad_kind),
        (Code::InvalidArgument, Some("kind".into()))
    );
}

#[tokio::test]
async fn bad_layers_are_refused_whole_with_each_problem_named() {
    let g = Grid::start().await;
    import(
        &g,
        layer(vec![square(
            "G1", "basic", ZS, 120.38, 36.06, 120.39, 36.07,
        )]),
    )
    .await
    .unwrap();
    let mut open = square("G3", "basic", ZS, 120.0, 36.0, 120.1, 36.1);
    open["geometry"]["coordinates"][0]
        .as_array_mut()
        .unwrap()
        .pop();
    let bowtie = json!({"type": "Feature", "properties": {"code": "G4", "community_code": ZS},
        "geometry": {"type": "Polygon", "coordinates": [[[120.0, 36.0], [120.1, 36.1], [120.1, 36.0], [120.0, 36.1], [120.0, 36.0]]]}});
    let (code, jiesu_code, field, msg) = refusal(
        g.c()
            .import_layer(authed(
                &g.admin(),
                ImportLayerRequest {
                    geojson: layer(vec![open, bowtie]),
                },
            ))
            .await,
    );
    assert_eq!(
        (code, jiesu_code.as_str(), field.as_deref()),
        (Code::InvalidArgument, "invalid_field", Some("geojson"))
    );
    assert!(
        msg.contains("features[0].geometry.coordinates[0]：环未闭合"),
        "{msg}"
    );
    assert!(msg.contains("features[1].geometry：几何图形无效"), "{msg}");
    // Overlapping an existing basic grid of the same community.
    let e = import(
        &g,
        layer(vec![square(
            "G5", "basic", ZS, 120.385, 36.065, 120.395, 36.075,
        )]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("同一社区的基础网格 G1 与 G5 相互重叠"),
        "{e:?}"
    );
    // Another tenant's community.
    let e = import(
        &g,
        layer(vec![square(
            "G6",
            "basic",
            "370203001001",
            120.5,
            36.0,
            120.6,
            36.1,
        )]),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("不在本辖区范围内"), "{e:?}");
    // English rides along for the callers who ask for it.
    let en = jiesu_proto::status::problem(&e).message.en;
    assert!(en.contains("not in the tenant's region"), "{en}");
    let dispatcher = g.token(Role::Dispatcher, "d-1");
    let forbidden = g
        .c()
        .import_layer(authed(
            &dispatcher,
            ImportLayerRequest {
                geojson: layer(vec![]),
            },
        ))
        .await;
    assert_eq!(refused(forbidden), (Code::PermissionDenied, None));
    let e = import(&g, "{not json".into()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Nothing refused was kept.
    let gw = g.token(Role::GridWorker, "gw-1");
    assert!(locate(&g, &gw, 36.05, 120.05).await.grid.is_none());
    for (lat, lon, field) in [
        (91.0, 120.0, "lat"),
        (36.0, 181.0, "lon"),
        (f64::NAN, 1.0, "lat"),
    ] {
        let r = g
            .c()
            .locate(authed(
                &gw,
                LocateRequest {
                    lat,
                    lon,
                    ..Default::default()
                },
            ))
            .await;
        assert_eq!(
            refused(r),
            (Code::InvalidArgument, Some(field.into())),
            "{lat}, {lon}"
        );
    }
    let citizen = g.token(Role::Citizen, "wx-1");
    let r = g
        .c()
        .locate(authed(
            &citizen,
            LocateRequest {
                lat: 36.06,
                lon: 120.38,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(refused(r), (Code::PermissionDenied, None));
}

#[tokio::test]
async fn the_division_tree_is_imported_and_read_inside_the_scope() {
    let g = Grid::start().await;
    let put = |token: String, csv: &str| {
        let mut c = g.c();
        let req = authed(&token, RegionsCsv { csv: csv.into() });
        async move { c.import_regions(req).await }
    };
    let csv = "code,name\n370202,市南区\n370202006,湛山街道\n370202006001,湛山社区\n370202007,香港中路街道\n";
    let done = put(g.admin(), csv).await.unwrap().into_inner();
    assert_eq!(done.regions, 4);
    let (code, _, field, msg) =
        refusal(put(g.admin(), "code,name\n370202008001,孤儿社区\n370203,别区\n").await);
    assert_eq!(
        (code, field.as_deref()),
        (Code::InvalidArgument, Some("csv"))
    );
    assert!(
        msg.contains("不在本辖区") && msg.contains("其上级区划不在列表中"),
        "{msg}"
    );
    let d = g.token(Role::Dispatcher, "d-1");
    assert_eq!(
        refused(put(d.clone(), csv).await),
        (Code::PermissionDenied, None)
    );

    let list = |token: String, under: &str| {
        let mut c = g.c();
        let req = authed(
            &token,
            ListRegionsRequest {
                under: under.into(),
            },
        );
        async move { c.list_regions(req).await.unwrap().into_inner().regions }
    };
    let regions = list(d.clone(), "370202006").await;
    let codes: Vec<&str> = regions.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["370202006", "370202006001"]);
    assert_eq!(
        (regions[1].parent_code.as_str(), regions[1].level.as_str()),
        ("370202006", "community")
    );
    // A street-scoped token sees its own subtree only.
    let street = g.scoped(Role::GridWorker, "w-1", "370202007");
    assert_eq!(list(street.clone(), "").await.len(), 1);
    assert!(list(street, "370202006").await.is_empty());
    let bad = g
        .c()
        .list_regions(authed(
            &d,
            ListRegionsRequest {
                under: "37020x".into(),
            },
        ))
        .await;
    assert_eq!(refused(bad), (Code::InvalidArgument, Some("under".into())));
}
