//! Intake's pure rules: what a valid request is, how tracking numbers look.
//! No I/O here; `api` translates, `store` persists.
//!
//! Here: the vocabularies (channel, nature, kind, urgency), statuses,
//! tracking numbers and free text; a create request's validation is in
//! `ticket`, the phone and ID-number rules in `contact`.

pub mod attributes;
pub mod categories;
mod contact;
pub mod credentials;
pub mod duplicates;
pub mod phrases;
pub mod suggest;
mod ticket;
pub mod webhook;

use chrono::NaiveDate;

pub use self::{
    contact::{normalize_id_number, normalize_phone},
    ticket::{
        MAX_ADDRESS_CHARS, MAX_ATTRIBUTES, MAX_CONTENT_CHARS, MAX_IDEMPOTENCY_KEY, MAX_NAME_CHARS,
        ValidTicket, request_hash, validate,
    },
};
pub use jiesu_common::{FieldError, Text, ids::parse_id_of as parse_id, text::says, tr};

pub fn bad(field: impl Into<String>, message: impl Into<Text>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

macro_rules! string_enum {
    ($name:ident { $($variant:ident => $text:literal / $zh:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Chinese label for people.
            pub fn zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

string_enum!(Channel {
    Hotline => "hotline" / "12345热线",
    App => "app" / "市民App",
    Wechat => "wechat" / "微信公众号",
    MiniProgram => "mini_program" / "微信小程序",
    Photo => "photo" / "随手拍",
    Grid => "grid" / "网格员上报",
    Enterprise => "enterprise" / "企业诉求专线",
    Transfer110 => "transfer_110" / "110转办",
    Transfer12368 => "transfer_12368" / "12368转办",
    Transfer12309 => "transfer_12309" / "12309转办",
    CityManagement => "city_management" / "数字城管",
    TenantPlatform => "tenant_platform" / "区县自有平台",
});

string_enum!(Nature {
    Consultation => "consultation" / "咨询",
    Help => "help" / "求助",
    Complaint => "complaint" / "投诉",
    Report => "report" / "举报",
    Suggestion => "suggestion" / "建议",
    Praise => "praise" / "表扬",
});

string_enum!(Kind {
    Livelihood => "livelihood" / "民生诉求",
    Development => "development" / "发展诉求",
    Enforcement => "enforcement" / "执法诉求",
});

string_enum!(Urgency {
    Normal => "normal" / "一般",
    Urgent => "urgent" / "紧急",
});

impl Channel {
    /// Channels a citizen submits on directly; the others are entered by
    /// staff or arrive from other systems.
    pub fn open_to_citizens(self) -> bool {
        matches!(
            self,
            Channel::App | Channel::Wechat | Channel::MiniProgram | Channel::Photo
        )
    }
}

/// Ticket status as intake knows it.
pub const STATUS_RECEIVED: &str = "received";
pub const STATUS_WITHDRAWN: &str = "withdrawn";
pub const STATUS_ANSWERED: &str = "answered";
/// Dispatch made a work order for it (from `ticket.dispatched`).
pub const STATUS_DISPATCHED: &str = "dispatched";
/// Merged into another ticket (并件): follows that ticket's status.
pub const STATUS_MERGED: &str = "merged";

/// Statuses after which nothing more happens to a ticket: Open311 `closed`.
/// Everything else (received, triage, dispatched, in progress...) is `open`.
pub const CLOSED_STATUSES: &[&str] = &["answered", "withdrawn", "resolved", "closed"];

pub fn is_closed(status: &str) -> bool {
    CLOSED_STATUSES.contains(&status)
}

/// A status as people say it (`已撤回`), for messages; one intake does not
/// know is shown as it is.
pub fn status_zh(status: &str) -> &str {
    match status {
        STATUS_RECEIVED => "已受理",
        STATUS_WITHDRAWN => "已撤回",
        STATUS_ANSWERED => "已答复",
        STATUS_DISPATCHED => "已派单",
        STATUS_MERGED => "已并件",
        "triage" => "待研判",
        "signed" => "已签收",
        "in_progress" => "办理中",
        "returned" => "已退单",
        "resolved" => "已办结",
        "reviewed" => "已审核",
        "closed" => "已结案",
        other => other,
    }
}

/// A tenant (jurisdiction) code: a 6- to 12-digit division code.
pub fn tenant_code(raw: &str) -> Result<String, FieldError> {
    let t = raw.trim();
    if (6..=12).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_owned())
    } else {
        Err(bad(
            "tenant",
            tr!(
                "必须是 6 到 12 位的行政区划代码",
                "must be a 6- to 12-digit division code"
            ),
        ))
    }
}

/// Free text from a person: trimmed, at most `max` characters, no control
/// characters but newlines; empty refused when `required`.
pub fn check_text(
    field: &str,
    raw: &str,
    max: usize,
    required: bool,
) -> Result<String, FieldError> {
    let t = raw.trim();
    if required && t.is_empty() {
        return Err(bad(field, says::required()));
    }
    if t.chars().count() > max {
        return Err(bad(field, says::at_most_chars(max)));
    }
    if t.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad(field, says::no_control_chars()));
    }
    Ok(t.to_owned())
}

pub use jiesu_common::{media, time::china_day};

/// `370202-20261122-00042`: tenant, China day, daily sequence.
pub fn tracking_no(tenant: &str, day: NaiveDate, seq: i32) -> String {
    format!("{tenant}-{}-{seq:05}", day.format("%Y%m%d"))
}

/// The timeline note for a received ticket (zh-CN, no personal data).
pub fn received_note(channel: Channel) -> String {
    format!("诉求已受理（渠道：{}）", channel.zh())
}
