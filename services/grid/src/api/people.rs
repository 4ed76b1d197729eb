//! The grid's people: grid workers with their grids and stars; households
//! and key persons, masked in lists, shown whole (with a purpose) to the
//! roles that need them, every read recorded.

use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_pii::mask_phone;
use jiesu_proto::grid::{
    AssignWorkerRequest, GetKeyPersonRequest, Household, KeyPerson, ListHouseholdsRequest,
    ListHouseholdsResponse, ListKeyPersonsRequest, ListKeyPersonsResponse,
    ListPersonalDataReadsRequest, ListPersonalDataReadsResponse, ListWorkersRequest,
    ListWorkersResponse, RateWorkerRequest, Resident, Worker,
};
use uuid::Uuid;

use crate::{
    ctx::{ADMINS, Ctx},
    domain::people::{
        check_category, check_id_number, check_phone, check_worker_kind, mask_household,
        mask_key_person, required, within,
    },
    error::{GridError, noun, parse_id},
    store::{
        residents::{self, KeyPersonFilter, Read, Table},
        workers,
    },
};

/// Roles that see key persons at all; grid workers only their grids'.
const KEY_PERSON_READERS: [Role; 3] = [Role::GridWorker, Role::Supervisor, Role::TenantAdmin];

pub async fn save_worker(ctx: &Ctx, who: &Principal, w: Worker) -> Result<Worker, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let id = match w.id.trim() {
        "" => Uuid::now_v7(),
        id => parse_id("id", id)?,
    };
    let checked = Worker {
        account: required("account", &w.account, 128)?,
        name: required("name", &w.name, 64)?,
        phone: check_phone("phone", &w.phone)?,
        occupation: w.occupation.trim().to_owned(),
        ..w
    };
    check_worker_kind(&checked.kind)?;
    workers::upsert(&ctx.db, &ctx.keyring, who.tenant.code(), id, &checked).await?;
    worker(ctx, who.tenant.code(), id).await
}

/// One worker, phone masked.
async fn worker(ctx: &Ctx, tenant: &str, id: Uuid) -> Result<Worker, GridError> {
    let mut found = masked_workers(ctx, tenant, Some(id), None).await?;
    found.pop().ok_or(GridError::NotFound(noun::WORKER))
}

async fn masked_workers(
    ctx: &Ctx,
    tenant: &str,
    id: Option<Uuid>,
    grid: Option<&str>,
) -> Result<Vec<Worker>, GridError> {
    let mut list = workers::list(&ctx.db, &ctx.keyring, tenant, id, grid).await?;
    for w in &mut list {
        w.phone = mask_phone(&w.phone);
    }
    Ok(list)
}

pub async fn list_workers(
    ctx: &Ctx,
    who: &Principal,
    req: ListWorkersRequest,
) -> Result<ListWorkersResponse, GridError> {
    who.require_any(&[
        Role::TenantAdmin,
        Role::Supervisor,
        Role::Dispatcher,
        Role::GridWorker,
    ])?;
    let grid = req.grid_code.trim();
    let workers = masked_workers(
        ctx,
        who.tenant.code(),
        None,
        (!grid.is_empty()).then_some(grid),
    )
    .await?;
    Ok(ListWorkersResponse { workers })
}

pub async fn assign_worker(
    ctx: &Ctx,
    who: &Principal,
    req: AssignWorkerRequest,
) -> Result<Worker, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let tenant = who.tenant.code();
    let id = parse_id("worker_id", &req.worker_id)?;
    worker(ctx, tenant, id).await?;
    let code = req.grid_code.trim();
    if !req.remove {
        ctx.grid(tenant, code)?;
    }
    workers::assign(&ctx.db, &ctx.outbox, tenant, id, code, req.remove).await?;
    worker(ctx, tenant, id).await
}

pub async fn rate_worker(
    ctx: &Ctx,
    who: &Principal,
    req: RateWorkerRequest,
) -> Result<Worker, GridError> {
    who.require_any(&ADMINS)?;
    let tenant = who.tenant.code();
    let id = parse_id("worker_id", &req.worker_id)?;
    let stars = within("stars", req.stars, 1..=5)?;
    let reason = required("reason", &req.reason, 500)?;
    worker(ctx, tenant, id).await?;
    let stars = i16::try_from(stars).unwrap_or(1);
    workers::rate(&ctx.db, tenant, id, stars, &reason, &who.sub).await?;
    worker(ctx, tenant, id).await
}

/// A household or key person being changed: it must exist, and the
/// caller must work on the grid it is in now (not only on the grid it is
/// moved to); otherwise it is not found.
async fn existing(ctx: &Ctx, who: &Principal, table: Table, id: &str) -> Result<Uuid, GridError> {
    let id = parse_id("id", id)?;
    let grid = residents::grid_of(&ctx.db, who.tenant.code(), table, id).await?;
    match grid {
        Some(g) if ctx.may_work_on(who, &g).await.is_ok() => Ok(id),
        _ => Err(GridError::NotFound(match table {
            Table::Households => noun::HOUSEHOLD,
            Table::KeyPersons => noun::KEY_PERSON,
        })),
    }
}

/// The id to save under: a new one, or an existing record's.
async fn id_to_save(ctx: &Ctx, who: &Principal, table: Table, id: &str) -> Result<Uuid, GridError> {
    match id.trim() {
        "" => Ok(Uuid::now_v7()),
        id => existing(ctx, who, table, id).await,
    }
}

pub async fn save_household(
    ctx: &Ctx,
    who: &Principal,
    h: Household,
) -> Result<Household, GridError> {
    let tenant = who.tenant.code();
    let grid = h.grid_code.trim().to_owned();
    // Who may write here first: a caller who may not is told so, not
    // whether the grid exists.
    ctx.may_work_on(who, &grid).await?;
    ctx.grid(tenant, &grid)?;
    let id = id_to_save(ctx, who, Table::Households, &h.id).await?;
    let mut residents = Vec::with_capacity(h.residents.len());
    let room = required("room", &h.room, 64)?;
    let head_name = required("head_name", &h.head_name, 64)?;
    let phone = check_phone("phone", &h.phone)?;
    let members = within("members", h.members, 1..=50)?;
    for (i, r) in h.residents.iter().enumerate() {
        let at = |f: &str| format!("residents[{i}].{f}");
        residents.push(Resident {
            name: required(&at("name"), &r.name, 64)?,
            relation: r.relation.trim().to_owned(),
            id_number: check_id_number(&at("id_number"), &r.id_number)?,
            birth_year: r.birth_year,
        });
    }
    let checked = Household {
        id: id.to_string(),
        grid_code: grid,
        building_code: h.building_code.trim().to_owned(),
        room,
        head_name,
        phone,
        members,
        residents,
    };
    residents::save_household(&ctx.db, &ctx.keyring, tenant, id, &checked).await?;
    let mut saved = residents::households(&ctx.db, &ctx.keyring, tenant, Some(id), None).await?;
    let mut one = saved.pop().ok_or(GridError::NotFound(noun::HOUSEHOLD))?;
    mask_household(&mut one);
    Ok(one)
}

pub async fn list_households(
    ctx: &Ctx,
    who: &Principal,
    req: ListHouseholdsRequest,
) -> Result<ListHouseholdsResponse, GridError> {
    let grid = req.grid_code.trim();
    if grid.is_empty() {
        return Err(GridError::field("grid_code", tr!("必填", "required")));
    }
    who.require_any(&KEY_PERSON_READERS)?;
    ctx.may_work_on(who, grid).await?;
    let tenant = who.tenant.code();
    let grids = Some(vec![grid.to_owned()]);
    let mut households = residents::households(&ctx.db, &ctx.keyring, tenant, None, grids).await?;
    households.iter_mut().for_each(mask_household);
    let ids = households.iter().map(|h| h.id.clone()).collect();
    record_read(ctx, who, "households", ids, "list").await?;
    Ok(ListHouseholdsResponse { households })
}

pub async fn save_key_person(
    ctx: &Ctx,
    who: &Principal,
    p: KeyPerson,
) -> Result<KeyPerson, GridError> {
    let tenant = who.tenant.code();
    let grid = p.grid_code.trim().to_owned();
    // Who may write here first: a caller who may not is told so, not
    // whether the grid exists.
    ctx.may_work_on(who, &grid).await?;
    ctx.grid(tenant, &grid)?;
    check_category(&p.category)?;
    let id = id_to_save(ctx, who, Table::KeyPersons, &p.id).await?;
    let household = match p.household_id.trim() {
        "" => None,
        h => Some(parse_id("household_id", h)?),
    };
    let checked = KeyPerson {
        grid_code: grid,
        name: required("name", &p.name, 64)?,
        id_number: check_id_number("id_number", &p.id_number)?,
        phone: match p.phone.trim() {
            "" => String::new(),
            ph => check_phone("phone", ph)?,
        },
        address: p.address.trim().to_owned(),
        note: p.note.trim().to_owned(),
        ..p
    };
    residents::save_key_person(&ctx.db, &ctx.keyring, tenant, id, household, &checked).await?;
    let filter = KeyPersonFilter {
        id: Some(id),
        ..KeyPersonFilter::default()
    };
    let mut saved = residents::key_persons(&ctx.db, &ctx.keyring, tenant, filter).await?;
    let mut one = saved.pop().ok_or(GridError::NotFound(noun::KEY_PERSON))?;
    mask_key_person(&mut one);
    Ok(one)
}

async fn record_read(
    ctx: &Ctx,
    who: &Principal,
    what: &str,
    ids: Vec<String>,
    purpose: &str,
) -> Result<(), GridError> {
    let read = Read {
        reader: &who.sub,
        roles: who.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        what,
        ids,
        purpose,
    };
    residents::record_read(&ctx.db, who.tenant.code(), read).await?;
    Ok(())
}

pub async fn list_key_persons(
    ctx: &Ctx,
    who: &Principal,
    req: ListKeyPersonsRequest,
) -> Result<ListKeyPersonsResponse, GridError> {
    who.require_any(&KEY_PERSON_READERS)?;
    let category = req.category.trim();
    let filter = KeyPersonFilter {
        id: None,
        grids: ctx.listed_grids(who, req.grid_code.trim()).await?,
        category: (!category.is_empty()).then_some(category),
    };
    let mut persons =
        residents::key_persons(&ctx.db, &ctx.keyring, who.tenant.code(), filter).await?;
    persons.iter_mut().for_each(mask_key_person);
    let ids = persons.iter().map(|p| p.id.clone()).collect();
    record_read(ctx, who, "key_persons", ids, "list").await?;
    Ok(ListKeyPersonsResponse { persons })
}

pub async fn get_key_person(
    ctx: &Ctx,
    who: &Principal,
    req: GetKeyPersonRequest,
) -> Result<KeyPerson, GridError> {
    who.require_any(&KEY_PERSON_READERS)?;
    let grids = ctx.visible_grids(who).await?;
    let id = parse_id("id", &req.id)?;
    let purpose = required("purpose", &req.purpose, 200)?;
    let filter = KeyPersonFilter {
        id: Some(id),
        grids,
        category: None,
    };
    let person = residents::key_persons(&ctx.db, &ctx.keyring, who.tenant.code(), filter)
        .await?
        .pop()
        .ok_or(GridError::NotFound(noun::KEY_PERSON))?;
    record_read(ctx, who, "key_person", vec![person.id.clone()], &purpose).await?;
    Ok(person)
}

pub async fn list_reads(
    ctx: &Ctx,
    who: &Principal,
    req: ListPersonalDataReadsRequest,
) -> Result<ListPersonalDataReadsResponse, GridError> {
    who.require_any(&ADMINS)?;
    let subject = req.subject_id.trim();
    let reads = residents::reads(
        &ctx.db,
        who.tenant.code(),
        (!subject.is_empty()).then_some(subject),
    )
    .await?;
    Ok(ListPersonalDataReadsResponse { reads })
}
