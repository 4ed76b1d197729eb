//! One lookup (一号查询): the tickets a reader may see, found by tracking
//! number, caller phone, dates, status, category, unit, channel or region,
//! newest first, a page at a time. A phone is matched through its blind
//! index, never by decrypting rows; each lookup by phone is recorded as a
//! read of personal data.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_pii::mask_phone;
use jiesu_proto::{
    intake::{ListTicketsRequest, ListTicketsResponse, TicketSummary},
    time::{from_timestamp, to_timestamp},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{Core, IntakeError, read::CONFIDENTIAL};
use crate::{
    domain::{bad, normalize_phone, says, tr},
    store::{self, stmt, tickets},
};

/// Who may look tickets up: staff who handle calls and orders, and
/// citizens (their own).
const LOOKERS: &[Role] = &[
    Role::Agent,
    Role::Dispatcher,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::Handler,
    Role::Citizen,
];
const DEFAULT_PAGE: u64 = 20;
const MAX_PAGE: u64 = 100;
const SUMMARY_CHARS: usize = 100;

/// Where the next page starts: after (created_at, id).
fn cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.timestamp_micros()))
}

fn parse_cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw.trim()).ok()?).ok()?;
    let (micros, id) = text.split_once(':')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

impl Core {
    pub async fn list_tickets(
        &self,
        who: &Principal,
        req: &ListTicketsRequest,
    ) -> Result<ListTicketsResponse, IntakeError> {
        who.require_any(LOOKERS)?;
        let citizen = who.is_citizen_only();
        let size = match u64::from(req.page_size) {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            _ => {
                return Err(bad(
                    "page_size",
                    tr!("必须在 1 到 {MAX_PAGE} 之间", "must be 1 to {MAX_PAGE}"),
                )
                .into());
            }
        };
        let mut q = tickets::Entity::find()
            .filter(tickets::Column::Tenant.eq(who.tenant.code()))
            .filter(tickets::Column::RegionCode.starts_with(who.scope.prefix()));
        if citizen {
            q = q.filter(tickets::Column::SubmitterSub.eq(who.sub.clone()));
        }
        // A unit's handler: the tickets its unit leads, co-handles or was
        // summoned to (dispatch's `ticket.units`).
        if let Some(unit) = who.reads_as_unit() {
            q = q.filter(sea_orm::sea_query::Expr::cust_with_values(
                "(tickets.unit_id = $1 OR tickets.id IN \
                  (SELECT ticket_id FROM ticket_units WHERE unit_id = $1))",
                [unit.to_owned()],
            ));
        }
        let text = |field: &str, raw: &str, max: usize| -> Result<Option<String>, IntakeError> {
            let v = raw.trim();
            if v.chars().count() > max {
                return Err(bad(field, says::at_most_chars(max)).into());
            }
            Ok((!v.is_empty()).then(|| v.to_owned()))
        };
        if let Some(no) = text("tracking_no", &req.tracking_no, 40)? {
            q = q.filter(tickets::Column::TrackingNo.eq(no));
        }
        let mut phone_key = None;
        if let Some(phone) = text("phone", &req.phone, 20)? {
            if citizen {
                return Err(bad(
                    "phone",
                    tr!(
                        "市民只能查看自己的诉求，不能按电话查询",
                        "citizens list their own requests, not a phone's"
                    ),
                )
                .into());
            }
            let normal = normalize_phone(&phone).ok_or_else(|| {
                bad(
                    "phone",
                    tr!(
                        "必须是手机号码或固定电话号码",
                        "must be a mobile or landline number"
                    ),
                )
            })?;
            let key = self.keyring.blind_index("phone", &normal);
            q = q.filter(tickets::Column::CitizenPhoneBidx.eq(key.clone()));
            phone_key = Some(key);
        }
        let from = req.from.as_ref().map(from_timestamp);
        let to = req.to.as_ref().map(from_timestamp);
        if from == Some(None) {
            return Err(bad("from", tr!("不是有效的时间", "is not a valid time")).into());
        }
        if to == Some(None) {
            return Err(bad("to", tr!("不是有效的时间", "is not a valid time")).into());
        }
        let (from, to) = (from.flatten(), to.flatten());
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(bad("from", says::not_after("to")).into());
        }
        if let Some(f) = from {
            q = q.filter(tickets::Column::CreatedAt.gte(f));
        }
        if let Some(t) = to {
            q = q.filter(tickets::Column::CreatedAt.lte(t));
        }
        if let Some(s) = text("status", &req.status, 20)? {
            q = q.filter(tickets::Column::Status.eq(s));
        }
        if let Some(c) = text("category", &req.category, 32)? {
            q = q.filter(tickets::Column::Category.eq(c));
        }
        if let Some(u) = text("unit_id", &req.unit_id, 64)? {
            q = q.filter(tickets::Column::UnitId.eq(u));
        }
        if let Some(c) = text("channel", &req.channel, 32)? {
            q = q.filter(tickets::Column::Channel.eq(c));
        }
        if let Some(r) = text("region_code", &req.region_code, 12)? {
            if !r.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(
                    "region_code",
                    tr!("必须是行政区划代码", "must be a division code"),
                )
                .into());
            }
            q = q.filter(tickets::Column::RegionCode.starts_with(r));
        }
        if !req.page_token.trim().is_empty() {
            let (at, id) = parse_cursor(&req.page_token).ok_or_else(|| {
                bad(
                    "page_token",
                    tr!(
                        "不是之前某一页给出的翻页令牌",
                        "is not a token from an earlier page"
                    ),
                )
            })?;
            q = q.filter(
                Condition::any().add(tickets::Column::CreatedAt.lt(at)).add(
                    Condition::all()
                        .add(tickets::Column::CreatedAt.eq(at))
                        .add(tickets::Column::Id.lt(id)),
                ),
            );
        }
        let mut rows = q
            .order_by_desc(tickets::Column::CreatedAt)
            .order_by_desc(tickets::Column::Id)
            .limit(size + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(20));
        if let Some(key) = phone_key {
            // The lookup of a caller's history is a read of personal data.
            self.db
                .execute_raw(stmt(
                    "INSERT INTO lookup_reads (tenant, reader, roles, phone_bidx, found) \
                     VALUES ($1, $2, $3, $4, $5)",
                    vec![
                        who.tenant.code().into(),
                        who.sub.clone().into(),
                        who.roles
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                            .into(),
                        key.into(),
                        i32::try_from(rows.len()).unwrap_or(i32::MAX).into(),
                    ],
                ))
                .await?;
        }
        let names = store::category_names(&self.db, who.tenant.code()).await?;
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => cursor(last.created_at, last.id),
            _ => String::new(),
        };
        let tickets = rows
            .into_iter()
            .map(|t| self.summary(who, t, &names))
            .collect::<Result<_, _>>()?;
        Ok(ListTicketsResponse {
            tickets,
            next_page_token,
        })
    }

    fn summary(
        &self,
        who: &Principal,
        t: tickets::Model,
        names: &std::collections::HashMap<String, String>,
    ) -> Result<TicketSummary, IntakeError> {
        // As on the ticket itself: a confidential caller is known (masked)
        // to agents and to the citizen themself; to others only as 保密.
        let hide = t.confidential
            && !(who.has_role(Role::Agent)
                || (who.is_citizen_only() && who.sub == t.submitter_sub));
        let phone = match &t.citizen_phone_enc {
            Some(_) if hide => CONFIDENTIAL.to_owned(),
            Some(sealed) => mask_phone(
                &self
                    .keyring
                    .decrypt(sealed, &format!("tickets.citizen_phone:{}", t.id))?,
            ),
            None => String::new(),
        };
        Ok(TicketSummary {
            id: t.id.to_string(),
            tracking_no: t.tracking_no,
            status: t.status,
            channel: t.channel,
            category_name: names.get(&t.category).cloned().unwrap_or_default(),
            category: t.category,
            region_code: t.region_code,
            created_at: Some(to_timestamp(t.created_at)),
            content: t.content.chars().take(SUMMARY_CHARS).collect(),
            phone,
            unit_id: t.unit_id.unwrap_or_default(),
            unit_name: t.unit_name.unwrap_or_default(),
            merged_into: t.merged_into.map(|m| m.to_string()).unwrap_or_default(),
        })
    }
}
