//! The grid's people: grid workers and their grids and stars; households
//! and key persons, whose personal fields are sealed at rest, masked in
//! lists, shown whole to the roles that need them, and every read recorded.

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_pii::{mask_address, mask_id_number, mask_name, mask_phone};
use jiesu_proto::{
    grid::{
        AssignWorkerRequest, GetKeyPersonRequest, Household, KeyPerson, ListHouseholdsRequest,
        ListHouseholdsResponse, ListKeyPersonsRequest, ListKeyPersonsResponse,
        ListPersonalDataReadsRequest, ListPersonalDataReadsResponse, ListWorkersRequest,
        ListWorkersResponse, PersonalDataRead, RateWorkerRequest, Resident, StaffMember, Worker,
        WorkerAssigned,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, TransactionTrait};
use tonic::Status;
use uuid::Uuid;

use crate::{
    ctx::{ADMINS, Ctx, db_error, parse_id},
    store::stmt,
};

pub const WORKER_KINDS: [&str; 5] = [
    "full_time",
    "part_time",
    "chief",
    "coordinator",
    "instructor",
];

/// Key-person categories (重点人群): the first four are 四必访.
pub const KEY_CATEGORIES: [(&str, &str); 7] = [
    ("elderly_alone", "独居老人"),
    ("disabled", "残疾人"),
    ("hardship", "困难家庭"),
    ("newborn", "新生儿家庭"),
    ("newly_wed", "新婚家庭"),
    ("community_correction", "社区矫正人员"),
    ("mental_illness", "严重精神障碍患者"),
];

pub fn category_label(code: &str) -> Option<&'static str> {
    KEY_CATEGORIES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
}

/// Roles that see key persons at all; grid workers only their grids'.
const KEY_PERSON_READERS: [Role; 3] = [Role::GridWorker, Role::Supervisor, Role::TenantAdmin];

fn check_phone(field: &str, phone: &str) -> Result<String, Status> {
    let p: String = phone
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if p.len() < 7 || p.len() > 15 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(status::invalid_field(
            field,
            "must be a phone number of 7 to 15 digits",
        ));
    }
    Ok(p)
}

/// An 18-character resident ID number (or nothing), upper-cased.
fn check_id_number(field: &str, v: &str) -> Result<String, Status> {
    let id = v.trim().to_uppercase();
    if !id.is_empty()
        && (id.len() != 18
            || !id[..17].bytes().all(|b| b.is_ascii_digit())
            || !id[17..].bytes().all(|b| b.is_ascii_digit() || b == b'X'))
    {
        return Err(status::invalid_field(
            field,
            "must be an 18-character resident ID number",
        ));
    }
    Ok(id)
}

fn required(field: &str, value: &str, max: usize) -> Result<String, Status> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(status::invalid_field(
            field,
            format!("required, at most {max} characters"),
        ));
    }
    Ok(v.to_owned())
}

/// The associated data a sealed field is bound to (row and column).
pub(crate) fn aad(tenant: &str, table: &str, id: Uuid, field: &str) -> String {
    format!("grid.{table}.{field}:{tenant}:{id}")
}

impl Ctx {
    pub async fn save_worker(&self, who: &Principal, w: Worker) -> Result<Worker, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code();
        let id = if w.id.trim().is_empty() {
            Uuid::now_v7()
        } else {
            parse_id("id", &w.id)?
        };
        let account = required("account", &w.account, 128)?;
        let name = required("name", &w.name, 64)?;
        let phone = check_phone("phone", &w.phone)?;
        if !WORKER_KINDS.contains(&w.kind.as_str()) {
            return Err(status::invalid_field(
                "kind",
                format!("must be one of {}", WORKER_KINDS.join(", ")),
            ));
        }
        let sealed = self.seal(&phone, &aad(tenant, "workers", id, "phone"))?;
        let r = self
            .db
            .execute_raw(stmt(
                "INSERT INTO workers (tenant, id, account, name, phone_enc, kind, occupation, active) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant, id) DO UPDATE SET account = $3, name = $4, phone_enc = $5, \
                   kind = $6, occupation = $7, active = $8",
                vec![
                    tenant.into(),
                    id.into(),
                    account.into(),
                    name.into(),
                    sealed.into(),
                    w.kind.clone().into(),
                    w.occupation.trim().to_owned().into(),
                    w.active.into(),
                ],
            ))
            .await;
        match r {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                return Err(status::coded(
                    tonic::Code::AlreadyExists,
                    "account_taken",
                    "account: another worker signs in with this account",
                    Some("account"),
                ));
            }
            Err(e) => return Err(db_error(e)),
        }
        self.worker(tenant, id).await
    }

    pub async fn worker(&self, tenant: &str, id: Uuid) -> Result<Worker, Status> {
        let mut found = self.workers(tenant, Some(id), None).await?;
        found.pop().ok_or_else(|| status::not_found("worker"))
    }

    /// Workers (phones masked) with their grids; by id or by grid.
    async fn workers(
        &self,
        tenant: &str,
        id: Option<Uuid>,
        grid: Option<&str>,
    ) -> Result<Vec<Worker>, Status> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT w.id, w.account, w.name, w.phone_enc, w.kind, w.occupation, w.active, \
                   COALESCE(w.stars, 0)::int AS stars, \
                   COALESCE(array_agg(a.grid_code ORDER BY a.grid_code) \
                     FILTER (WHERE a.grid_code IS NOT NULL), '{}') AS grids \
                 FROM workers w LEFT JOIN assignments a ON a.tenant = w.tenant AND a.worker_id = w.id \
                 WHERE w.tenant = $1 AND ($2::uuid IS NULL OR w.id = $2) \
                   AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM assignments b \
                     WHERE b.tenant = w.tenant AND b.worker_id = w.id AND b.grid_code = $3)) \
                 GROUP BY w.id, w.account, w.name, w.phone_enc, w.kind, w.occupation, w.active, w.stars \
                 ORDER BY w.name, w.id",
                vec![tenant.into(), id.into(), grid.map(str::to_owned).into()],
            ))
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: Uuid = r.try_get("", "id").map_err(db_error)?;
            let sealed: String = r.try_get("", "phone_enc").map_err(db_error)?;
            let phone = self.open(&sealed, &aad(tenant, "workers", id, "phone"))?;
            out.push(Worker {
                id: id.to_string(),
                account: r.try_get("", "account").map_err(db_error)?,
                name: r.try_get("", "name").map_err(db_error)?,
                phone: mask_phone(&phone),
                kind: r.try_get("", "kind").map_err(db_error)?,
                occupation: r.try_get("", "occupation").map_err(db_error)?,
                active: r.try_get("", "active").map_err(db_error)?,
                stars: r.try_get("", "stars").map_err(db_error)?,
                grids: r.try_get("", "grids").map_err(db_error)?,
            });
        }
        Ok(out)
    }

    pub async fn list_workers(
        &self,
        who: &Principal,
        req: ListWorkersRequest,
    ) -> Result<ListWorkersResponse, Status> {
        who.require_any(&[
            Role::TenantAdmin,
            Role::Supervisor,
            Role::Dispatcher,
            Role::GridWorker,
        ])?;
        let grid = req.grid_code.trim();
        let workers = self
            .workers(who.tenant.code(), None, (!grid.is_empty()).then_some(grid))
            .await?;
        Ok(ListWorkersResponse { workers })
    }

    /// A basic grid's active workers, for locate (phones masked).
    pub async fn staff(&self, tenant: &str, grid: &str) -> Result<Vec<StaffMember>, Status> {
        Ok(self
            .workers(tenant, None, Some(grid))
            .await?
            .into_iter()
            .filter(|w| w.active)
            .map(|w| StaffMember {
                worker_id: w.id,
                name: w.name,
                kind: w.kind,
                phone_masked: w.phone,
                stars: w.stars,
            })
            .collect())
    }

    pub async fn assign_worker(
        &self,
        who: &Principal,
        req: AssignWorkerRequest,
    ) -> Result<Worker, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code();
        let id = parse_id("worker_id", &req.worker_id)?;
        self.worker(tenant, id).await?;
        let code = req.grid_code.trim();
        if !req.remove {
            self.grid(tenant, code)?;
        }
        let txn = self.db.begin().await.map_err(db_error)?;
        let sql = if req.remove {
            "DELETE FROM assignments WHERE tenant = $1 AND worker_id = $2 AND grid_code = $3"
        } else {
            "INSERT INTO assignments (tenant, worker_id, grid_code) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        };
        let changed = txn
            .execute_raw(stmt(sql, vec![tenant.into(), id.into(), code.into()]))
            .await
            .map_err(db_error)?
            .rows_affected();
        if changed > 0 {
            let event = WorkerAssigned {
                tenant: tenant.to_owned(),
                worker_id: id.to_string(),
                grid_code: code.to_owned(),
                removed: req.remove,
                at: Some(to_timestamp(Utc::now())),
            };
            self.outbox.enqueue(&txn, &event).await.map_err(db_error)?;
        }
        txn.commit().await.map_err(db_error)?;
        self.outbox.wake();
        self.worker(tenant, id).await
    }

    pub async fn rate_worker(
        &self,
        who: &Principal,
        req: RateWorkerRequest,
    ) -> Result<Worker, Status> {
        who.require_any(&ADMINS)?;
        let tenant = who.tenant.code();
        let id = parse_id("worker_id", &req.worker_id)?;
        if !(1..=5).contains(&req.stars) {
            return Err(status::invalid_field("stars", "must be 1 to 5"));
        }
        let reason = required("reason", &req.reason, 500)?;
        self.worker(tenant, id).await?;
        let stars = i16::try_from(req.stars).unwrap_or(1);
        let txn = self.db.begin().await.map_err(db_error)?;
        txn.execute_raw(stmt(
            "INSERT INTO worker_ratings (tenant, worker_id, stars, reason, rated_by) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                tenant.into(),
                id.into(),
                stars.into(),
                reason.into(),
                who.sub.clone().into(),
            ],
        ))
        .await
        .map_err(db_error)?;
        txn.execute_raw(stmt(
            "UPDATE workers SET stars = $3 WHERE tenant = $1 AND id = $2",
            vec![tenant.into(), id.into(), stars.into()],
        ))
        .await
        .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.worker(tenant, id).await
    }

    /// A household or key person being changed: it must exist, and the
    /// caller must work on the grid it is in now (not only on the grid it
    /// is moved to); otherwise it is not found.
    async fn existing(&self, who: &Principal, table: &str, id: Uuid) -> Result<Uuid, Status> {
        let row = self
            .db
            .query_one_raw(stmt(
                &format!("SELECT grid_code FROM {table} WHERE tenant = $1 AND id = $2"),
                vec![who.tenant.code().into(), id.into()],
            ))
            .await
            .map_err(db_error)?;
        let grid: Option<String> = row
            .map(|r| r.try_get("", "grid_code"))
            .transpose()
            .map_err(db_error)?;
        match grid {
            Some(g) if self.may_work_on(who, &g).await.is_ok() => Ok(id),
            _ => Err(status::not_found(if table == "households" {
                "household"
            } else {
                "key person"
            })),
        }
    }

    pub async fn save_household(&self, who: &Principal, h: Household) -> Result<Household, Status> {
        let tenant = who.tenant.code();
        let grid = h.grid_code.trim().to_owned();
        self.grid(tenant, &grid)?;
        self.may_work_on(who, &grid).await?;
        let id = match h.id.trim() {
            "" => Uuid::now_v7(),
            id => {
                self.existing(who, "households", parse_id("id", id)?)
                    .await?
            }
        };
        let room = required("room", &h.room, 64)?;
        let head = required("head_name", &h.head_name, 64)?;
        let phone = check_phone("phone", &h.phone)?;
        if !(1..=50).contains(&h.members) {
            return Err(status::invalid_field("members", "must be 1 to 50"));
        }
        let mut residents = Vec::with_capacity(h.residents.len());
        for (i, r) in h.residents.iter().enumerate() {
            let at = |f: &str| format!("residents[{i}].{f}");
            residents.push(serde_json::json!({
                "name": required(&at("name"), &r.name, 64)?,
                "relation": r.relation.trim(),
                "id_number": check_id_number(&at("id_number"), &r.id_number)?,
                "birth_year": r.birth_year,
            }));
        }
        let seal = |v: &str, f: &str| self.seal(v, &aad(tenant, "households", id, f));
        let residents_enc = seal(&serde_json::Value::from(residents).to_string(), "residents")?;
        self.db
            .execute_raw(stmt(
                "INSERT INTO households (tenant, id, grid_code, building_code, room_enc, head_name_enc, \
                   phone_enc, members, residents_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant, id) DO UPDATE SET grid_code = $3, building_code = $4, \
                   room_enc = $5, head_name_enc = $6, phone_enc = $7, members = $8, residents_enc = $9",
                vec![
                    tenant.into(),
                    id.into(),
                    grid.clone().into(),
                    h.building_code.trim().to_owned().into(),
                    seal(&room, "room")?.into(),
                    seal(&head, "head_name")?.into(),
                    seal(&phone, "phone")?.into(),
                    h.members.into(),
                    residents_enc.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        self.households(tenant, Some(id), None)
            .await?
            .pop()
            .ok_or_else(|| status::not_found("household"))
    }

    /// Households, masked, by id or of some grids.
    async fn households(
        &self,
        tenant: &str,
        id: Option<Uuid>,
        grids: Option<Vec<String>>,
    ) -> Result<Vec<Household>, Status> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT id, grid_code, building_code, head_name_enc, phone_enc, members, residents_enc \
                 FROM households WHERE tenant = $1 AND ($2::uuid IS NULL OR id = $2) \
                   AND ($3::text[] IS NULL OR grid_code = ANY($3)) ORDER BY grid_code, id LIMIT 5000",
                vec![tenant.into(), id.into(), grids.into()],
            ))
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: Uuid = r.try_get("", "id").map_err(db_error)?;
            let open = |col: &str, field: &str| -> Result<Option<String>, Status> {
                let sealed: Option<String> = r.try_get("", col).map_err(db_error)?;
                sealed
                    .map(|v| self.open(&v, &aad(tenant, "households", id, field)))
                    .transpose()
            };
            let residents: Vec<serde_json::Value> = open("residents_enc", "residents")?
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let text =
                |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
            out.push(Household {
                id: id.to_string(),
                grid_code: r.try_get("", "grid_code").map_err(db_error)?,
                building_code: r.try_get("", "building_code").map_err(db_error)?,
                room: "****".into(),
                head_name: mask_name(&open("head_name_enc", "head_name")?.unwrap_or_default()),
                phone: mask_phone(&open("phone_enc", "phone")?.unwrap_or_default()),
                members: r.try_get("", "members").map_err(db_error)?,
                residents: residents
                    .iter()
                    .map(|v| Resident {
                        name: mask_name(&text(v, "name")),
                        relation: text(v, "relation"),
                        id_number: mask_id_number(&text(v, "id_number")),
                        birth_year: v["birth_year"]
                            .as_i64()
                            .and_then(|y| i32::try_from(y).ok())
                            .unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    pub async fn list_households(
        &self,
        who: &Principal,
        req: ListHouseholdsRequest,
    ) -> Result<ListHouseholdsResponse, Status> {
        let grid = req.grid_code.trim();
        if grid.is_empty() {
            return Err(status::invalid_field("grid_code", "required"));
        }
        who.require_any(&KEY_PERSON_READERS)?;
        self.may_work_on(who, grid).await?;
        let households = self
            .households(who.tenant.code(), None, Some(vec![grid.to_owned()]))
            .await?;
        let ids = households.iter().map(|h| h.id.clone()).collect();
        self.record_read(who, "households", ids, "list").await?;
        Ok(ListHouseholdsResponse { households })
    }

    pub async fn save_key_person(
        &self,
        who: &Principal,
        p: KeyPerson,
    ) -> Result<KeyPerson, Status> {
        let tenant = who.tenant.code();
        let grid = p.grid_code.trim().to_owned();
        self.grid(tenant, &grid)?;
        self.may_work_on(who, &grid).await?;
        if category_label(&p.category).is_none() {
            let all: Vec<&str> = KEY_CATEGORIES.iter().map(|(c, _)| *c).collect();
            return Err(status::invalid_field(
                "category",
                format!("must be one of {}", all.join(", ")),
            ));
        }
        let id = match p.id.trim() {
            "" => Uuid::now_v7(),
            id => {
                self.existing(who, "key_persons", parse_id("id", id)?)
                    .await?
            }
        };
        let household = match p.household_id.trim() {
            "" => None,
            h => Some(parse_id("household_id", h)?),
        };
        let name = required("name", &p.name, 64)?;
        let id_number = check_id_number("id_number", &p.id_number)?;
        let phone = match p.phone.trim() {
            "" => String::new(),
            ph => check_phone("phone", ph)?,
        };
        let seal = |v: &str, f: &str| self.seal(v, &aad(tenant, "key_persons", id, f));
        self.db
            .execute_raw(stmt(
                "INSERT INTO key_persons (tenant, id, grid_code, household_id, category, name_enc, \
                   id_number_enc, phone_enc, address_enc, note_enc, active) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (tenant, id) DO UPDATE SET grid_code = $3, household_id = $4, \
                   category = $5, name_enc = $6, id_number_enc = $7, phone_enc = $8, \
                   address_enc = $9, note_enc = $10, active = $11",
                vec![
                    tenant.into(),
                    id.into(),
                    grid.clone().into(),
                    household.into(),
                    p.category.clone().into(),
                    seal(&name, "name")?.into(),
                    seal(&id_number, "id_number")?.into(),
                    seal(&phone, "phone")?.into(),
                    seal(p.address.trim(), "address")?.into(),
                    seal(p.note.trim(), "note")?.into(),
                    p.active.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let mut saved = self.key_persons(tenant, Some(id), None, None).await?;
        let mut one = saved.pop().ok_or_else(|| status::not_found("key person"))?;
        mask(&mut one);
        Ok(one)
    }

    /// Key persons, whole (callers mask), with their last visit.
    async fn key_persons(
        &self,
        tenant: &str,
        id: Option<Uuid>,
        grids: Option<Vec<String>>,
        category: Option<&str>,
    ) -> Result<Vec<KeyPerson>, Status> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT k.id, k.grid_code, k.household_id, k.category, k.name_enc, k.id_number_enc, \
                   k.phone_enc, k.address_enc, k.note_enc, k.active, \
                   (SELECT max(t.done_at) FROM duty_tasks t WHERE t.tenant = k.tenant \
                      AND t.target_kind = 'key_person' AND t.target_id = k.id::text) AS last_visit \
                 FROM key_persons k WHERE k.tenant = $1 AND ($2::uuid IS NULL OR k.id = $2) \
                   AND ($3::text[] IS NULL OR k.grid_code = ANY($3)) \
                   AND ($4::text IS NULL OR k.category = $4) \
                 ORDER BY k.grid_code, k.id",
                vec![
                    tenant.into(),
                    id.into(),
                    grids.into(),
                    category.map(str::to_owned).into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: Uuid = r.try_get("", "id").map_err(db_error)?;
            let open = |col: &str, field: &str| -> Result<String, Status> {
                let sealed: String = r.try_get("", col).map_err(db_error)?;
                self.open(&sealed, &aad(tenant, "key_persons", id, field))
            };
            let household: Option<Uuid> = r.try_get("", "household_id").map_err(db_error)?;
            let last: Option<DateTime<Utc>> = r.try_get("", "last_visit").map_err(db_error)?;
            out.push(KeyPerson {
                id: id.to_string(),
                grid_code: r.try_get("", "grid_code").map_err(db_error)?,
                household_id: household.map(|h| h.to_string()).unwrap_or_default(),
                category: r.try_get("", "category").map_err(db_error)?,
                name: open("name_enc", "name")?,
                id_number: open("id_number_enc", "id_number")?,
                phone: open("phone_enc", "phone")?,
                address: open("address_enc", "address")?,
                note: open("note_enc", "note")?,
                active: r.try_get("", "active").map_err(db_error)?,
                last_visit: last.map(to_timestamp),
            });
        }
        Ok(out)
    }

    /// The grids whose key persons `who` may read: `None` = all of the
    /// tenant's; refused for roles that never see them.
    async fn key_person_scope(&self, who: &Principal) -> Result<Option<Vec<String>>, Status> {
        who.require_any(&KEY_PERSON_READERS)?;
        if ADMINS.iter().any(|r| who.has_role(*r)) {
            return Ok(self.scoped_grids(who));
        }
        Ok(Some(self.my_grids(who).await?.into_iter().collect()))
    }

    async fn record_read(
        &self,
        who: &Principal,
        what: &str,
        ids: Vec<String>,
        purpose: &str,
    ) -> Result<(), Status> {
        let roles: Vec<String> = who.roles.iter().map(|r| r.as_str().to_owned()).collect();
        self.db
            .execute_raw(stmt(
                "INSERT INTO pii_reads (tenant, reader, roles, what, subject_ids, purpose) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    who.tenant.code().into(),
                    who.sub.clone().into(),
                    roles.into(),
                    what.into(),
                    ids.into(),
                    purpose.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn list_key_persons(
        &self,
        who: &Principal,
        req: ListKeyPersonsRequest,
    ) -> Result<ListKeyPersonsResponse, Status> {
        who.require_any(&KEY_PERSON_READERS)?;
        let grids = self.listed_grids(who, req.grid_code.trim()).await?;
        let category = req.category.trim();
        let mut persons = self
            .key_persons(
                who.tenant.code(),
                None,
                grids,
                (!category.is_empty()).then_some(category),
            )
            .await?;
        persons.iter_mut().for_each(mask);
        let ids = persons.iter().map(|p| p.id.clone()).collect();
        self.record_read(who, "key_persons", ids, "list").await?;
        Ok(ListKeyPersonsResponse { persons })
    }

    pub async fn get_key_person(
        &self,
        who: &Principal,
        req: GetKeyPersonRequest,
    ) -> Result<KeyPerson, Status> {
        let scope = self.key_person_scope(who).await?;
        let id = parse_id("id", &req.id)?;
        let purpose = required("purpose", &req.purpose, 200)?;
        let person = self
            .key_persons(who.tenant.code(), Some(id), scope, None)
            .await?
            .pop()
            .ok_or_else(|| status::not_found("key person"))?;
        self.record_read(who, "key_person", vec![person.id.clone()], &purpose)
            .await?;
        Ok(person)
    }

    pub async fn list_reads(
        &self,
        who: &Principal,
        req: ListPersonalDataReadsRequest,
    ) -> Result<ListPersonalDataReadsResponse, Status> {
        who.require_any(&ADMINS)?;
        let subject = req.subject_id.trim();
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT at, reader, roles, what, subject_ids, purpose FROM pii_reads \
                 WHERE tenant = $1 AND ($2::text IS NULL OR $2 = ANY(subject_ids)) \
                 ORDER BY at DESC, id DESC LIMIT 500",
                vec![
                    who.tenant.code().into(),
                    (!subject.is_empty()).then(|| subject.to_owned()).into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let mut reads = Vec::with_capacity(rows.len());
        for r in rows {
            let at: DateTime<Utc> = r.try_get("", "at").map_err(db_error)?;
            reads.push(PersonalDataRead {
                at: Some(to_timestamp(at)),
                reader: r.try_get("", "reader").map_err(db_error)?,
                roles: r.try_get("", "roles").map_err(db_error)?,
                what: r.try_get("", "what").map_err(db_error)?,
                subject_ids: r.try_get("", "subject_ids").map_err(db_error)?,
                purpose: r.try_get("", "purpose").map_err(db_error)?,
            });
        }
        Ok(ListPersonalDataReadsResponse { reads })
    }
}

/// Hides a key person's personal fields (lists).
fn mask(p: &mut KeyPerson) {
    p.name = mask_name(&p.name);
    p.id_number = mask_id_number(&p.id_number);
    p.phone = mask_phone(&p.phone);
    p.address = mask_address(&p.address);
    if !p.note.is_empty() {
        p.note = "****".into();
    }
}
