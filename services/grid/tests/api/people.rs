//! Workers' stars, households and key persons: sealed at rest, masked in
//! lists, whole only with a purpose, every read on record, hidden from
//! other roles, grids, scopes and tenants.

use jiesu_auth::Role;
use jiesu_proto::grid::{
    GetKeyPersonRequest, Household, KeyPerson, ListHouseholdsRequest, ListKeyPersonsRequest,
    ListPersonalDataReadsRequest, ListWorkersRequest, RateWorkerRequest, Resident, Worker,
};
use tonic::Code;

use crate::helpers::{Grid, OTHER, authed, refusal, refused, two_grids, worker};

fn rating(worker_id: &str, stars: i32, reason: &str) -> RateWorkerRequest {
    RateWorkerRequest {
        worker_id: worker_id.into(),
        stars,
        reason: reason.into(),
    }
}

#[tokio::test]
async fn workers_are_rated_by_supervisors_and_accounts_are_unique() {
    let g = Grid::start().await;
    two_grids(&g).await;
    let worker_id = worker(&g, "gw-1", "王海燕", "G1").await;
    let gw1 = g.token(Role::GridWorker, "gw-1");
    let supervisor = g.token(Role::Supervisor, "sup-1");
    let rate = |token: &str, r: RateWorkerRequest| {
        let mut c = g.c();
        let req = authed(token, r);
        async move { c.rate_worker(req).await }
    };
    assert_eq!(
        refused(rate(&gw1, rating(&worker_id, 5, "自评")).await),
        (Code::PermissionDenied, None)
    );
    assert_eq!(
        refused(rate(&supervisor, rating(&worker_id, 6, "x")).await),
        (Code::InvalidArgument, Some("stars".into()))
    );
    let rated = rate(&supervisor, rating(&worker_id, 4, "走访到位，台账完整"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rated.stars, 4);
    let list = g
        .c()
        .list_workers(authed(
            &supervisor,
            ListWorkersRequest {
                grid_code: "G1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .workers;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].phone, "138****8000");

    // A second worker signing in with the same account.
    let again = g
        .c()
        .save_worker(authed(
            &g.admin(),
            Worker {
                account: "gw-1".into(),
                name: "冒名".into(),
                phone: "13900000000".into(),
                kind: "part_time".into(),
                ..Default::default()
            },
        ))
        .await;
    let (code, jiesu_code, field, _) = refusal(again);
    assert_eq!(
        (code, jiesu_code.as_str(), field.as_deref()),
        (Code::AlreadyExists, "account_taken", Some("account"))
    );
    // The phone is sealed at rest.
    let leaked =
        g.db.count("SELECT count(*) FROM workers WHERE phone_enc LIKE '%13800138000%'")
            .await;
    assert_eq!(leaked, 0);
}

fn elderly(household_id: &str) -> KeyPerson {
    KeyPerson {
        grid_code: "G1".into(),
        household_id: household_id.into(),
        category: "elderly_alone".into(),
        name: "张秀兰".into(),
        id_number: "370202194501011234".into(),
        phone: "13912345678".into(),
        address: "燕儿岛路8号3单元502".into(),
        note: "独居，患高血压".into(),
        active: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn key_persons_are_sealed_masked_audited_and_hidden_from_other_roles() {
    let g = Grid::start().await;
    two_grids(&g).await;
    let admin = g.admin();
    worker(&g, "gw-1", "王海燕", "G1").await;
    worker(&g, "gw-3", "李强", "G3").await;
    let gw1 = g.token(Role::GridWorker, "gw-1");
    let gw3 = g.token(Role::GridWorker, "gw-3");

    // The grid's worker registers a household and an elderly resident.
    let h = g
        .c()
        .save_household(authed(
            &gw1,
            Household {
                grid_code: "G1".into(),
                room: "3单元502".into(),
                head_name: "张秀兰".into(),
                phone: "13912345678".into(),
                members: 1,
                residents: vec![Resident {
                    name: "张秀兰".into(),
                    relation: "户主".into(),
                    id_number: "370202194501011234".into(),
                    birth_year: 1945,
                }],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (h.head_name.as_str(), h.phone.as_str(), h.room.as_str()),
        ("张**", "139****5678", "****")
    );
    let save = |token: &str, p: KeyPerson| {
        let mut c = g.c();
        let req = authed(token, p);
        async move { c.save_key_person(req).await }
    };
    let (code, jiesu_code, _, _) = refusal(save(&gw3, elderly(&h.id)).await);
    assert_eq!(
        (code, jiesu_code.as_str()),
        (Code::PermissionDenied, "not_your_grid")
    );
    let mut bad = elderly(&h.id);
    bad.id_number = "12345".into();
    assert_eq!(
        refused(save(&gw1, bad).await),
        (Code::InvalidArgument, Some("id_number".into()))
    );
    let saved = save(&gw1, elderly(&h.id)).await.unwrap().into_inner();
    assert_eq!(
        (saved.name.as_str(), saved.id_number.as_str()),
        ("张**", "370202********1234")
    );
    let id = saved.id.clone();

    // Sealed at rest: the plaintext is nowhere in grid's tables.
    for sql in [
        "SELECT count(*) FROM key_persons WHERE name_enc LIKE '%张秀兰%' \
         OR id_number_enc LIKE '%370202194501011234%' OR phone_enc LIKE '%13912345678%'",
        "SELECT count(*) FROM households WHERE head_name_enc LIKE '%张秀兰%'",
        "SELECT count(*) FROM households WHERE residents_enc LIKE '%370202194501011234%'",
    ] {
        assert_eq!(g.db.count(sql).await, 0, "{sql}");
    }
    let homes = |token: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            ListHouseholdsRequest {
                grid_code: "G1".into(),
            },
        );
        async move { c.list_households(req).await }
    };
    let listed = homes(&gw1).await.unwrap().into_inner().households;
    assert_eq!(
        listed[0].residents[0],
        Resident {
            name: "张**".into(),
            relation: "户主".into(),
            id_number: "370202********1234".into(),
            birth_year: 1945
        }
    );
    let (code, jiesu_code, _, _) = refusal(homes(&gw3).await);
    assert_eq!(
        (code, jiesu_code.as_str()),
        (Code::PermissionDenied, "not_your_grid")
    );

    // The list is masked; the whole record needs a purpose and is recorded.
    let list = |token: &str, grid: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            ListKeyPersonsRequest {
                grid_code: grid.into(),
                ..Default::default()
            },
        );
        async move { c.list_key_persons(req).await }
    };
    let persons = list(&gw1, "").await.unwrap().into_inner().persons;
    assert_eq!(persons[0].phone, "139****5678");
    assert_eq!(persons[0].note, "****");
    let read = |token: &str, purpose: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            GetKeyPersonRequest {
                id: id.clone(),
                purpose: purpose.into(),
            },
        );
        async move { c.get_key_person(req).await }
    };
    assert_eq!(
        refused(read(&gw1, "").await),
        (Code::InvalidArgument, Some("purpose".into()))
    );
    let whole = read(&gw1, "四必访走访").await.unwrap().into_inner();
    assert_eq!(
        (
            whole.name.as_str(),
            whole.id_number.as_str(),
            whole.note.as_str()
        ),
        ("张秀兰", "370202194501011234", "独居，患高血压")
    );

    // Roles that do not need key persons never see them.
    for role in [Role::Agent, Role::Dispatcher, Role::Handler, Role::Citizen] {
        let token = g.token(role, "someone");
        assert_eq!(
            refused(read(&token, "看看").await).0,
            Code::PermissionDenied,
            "{role:?}"
        );
        assert_eq!(
            refused(list(&token, "").await).0,
            Code::PermissionDenied,
            "{role:?}"
        );
    }
    // Another grid's worker: not in their list, not readable.
    assert_eq!(refused(list(&gw3, "G1").await).0, Code::PermissionDenied);
    assert!(
        list(&gw3, "")
            .await
            .unwrap()
            .into_inner()
            .persons
            .is_empty()
    );
    assert_eq!(refused(read(&gw3, "走访").await).0, Code::NotFound);
    // Nor may they move the person into their own grid.
    let takeover = KeyPerson {
        id: id.clone(),
        grid_code: "G3".into(),
        category: "elderly_alone".into(),
        name: "张秀兰".into(),
        active: true,
        ..Default::default()
    };
    assert_eq!(
        refused(save(&gw3, takeover.clone()).await).0,
        Code::NotFound
    );
    let back = KeyPerson {
        grid_code: "G1".into(),
        ..takeover
    };
    let moved = save(&admin, back).await.unwrap().into_inner();
    assert_eq!(moved.grid_code, "G1");
    // A supervisor of the next community sees only its grids.
    let next_door = g.scoped(Role::Supervisor, "sup-2", OTHER);
    assert_eq!(refused(read(&next_door, "核查").await).0, Code::NotFound);
    assert!(
        list(&next_door, "")
            .await
            .unwrap()
            .into_inner()
            .persons
            .is_empty()
    );
    // Another tenant sees nothing either.
    let laoshan = g.kit.keys.token("370212", &[Role::TenantAdmin], "admin-ls");
    assert_eq!(refused(read(&laoshan, "x").await).0, Code::NotFound);

    // Every read is on record, with who and why; refusals read nothing.
    let reads = |token: &str, subject: &str| {
        let mut c = g.c();
        let req = authed(
            token,
            ListPersonalDataReadsRequest {
                subject_id: subject.into(),
            },
        );
        async move { c.list_personal_data_reads(req).await }
    };
    let on_record = reads(&admin, &id).await.unwrap().into_inner().reads;
    let whats: Vec<(&str, &str, &str)> = on_record
        .iter()
        .map(|r| (r.reader.as_str(), r.what.as_str(), r.purpose.as_str()))
        .collect();
    assert_eq!(
        whats,
        vec![
            ("gw-1", "key_person", "四必访走访"),
            ("gw-1", "key_persons", "list")
        ]
    );
    assert_eq!(on_record[0].roles, ["grid_worker"]);
    assert_eq!(refused(reads(&gw1, "").await).0, Code::PermissionDenied);
}
