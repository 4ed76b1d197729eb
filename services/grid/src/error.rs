//! Why a grid call failed: one enum for the whole service, and the one
//! place that turns it into a `tonic::Status` (gRPC code, `jiesu-code` and
//! `jiesu-field` metadata; see `jiesu_proto::status`).
//!
//! [`GridError::text`] is exactly the message the caller reads (in Chinese
//! and English), so a streamed import can record a refusal as it would have
//! answered it; `Display` is its English, for logs. Database and key
//! failures are logged here and reach the caller only as "internal error".

use jiesu_auth::AuthError;
use jiesu_common::{FieldError, Text, tr};
use jiesu_proto::status;
use sea_orm::DbErr;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// Bad input in one field (a dotted path such as `rules[0].every`).
    #[error("{}", self.text().en)]
    Field { field: String, message: Text },
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// What was not found: [`noun::GRID`], [`noun::WORKER`], ...
    #[error("{}", self.text().en)]
    NotFound(noun::Noun),
    #[error("{}", self.text().en)]
    NotYourGrid(String),
    #[error("{}", self.text().en)]
    AddressUnknown,
    #[error("{}", self.text().en)]
    AccountTaken,
    #[error("{}", self.text().en)]
    ImportExists,
    #[error("{}", self.text().en)]
    AlreadyDone,
    #[error("{}", self.text().en)]
    GridRetired(String),
    #[error("{}", self.text().en)]
    GridChanged,
    /// The event's status (`closed`, `whistled`).
    #[error("{}", self.text().en)]
    IllegalTransition(String),
    /// The layer moved on between the checks and the write; `resend` says
    /// what to send again.
    #[error("{}", self.text().en)]
    LayerChanged { resend: Text },
    /// The caller's request stream failed (as tonic reported it).
    #[error("{}", self.text().en)]
    Stream(Status),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("personal-data key: {0}")]
    Pii(#[from] jiesu_pii::PiiError),
    /// A fault of grid's own (a task that panicked, a row that vanished).
    #[error("{0}")]
    Internal(&'static str),
}

impl GridError {
    pub fn field(field: impl Into<String>, message: impl Into<Text>) -> Self {
        Self::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether the caller learns only that it failed.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Pii(_) | Self::Internal(_))
    }

    /// What the caller reads.
    pub fn text(&self) -> Text {
        match self {
            Self::Field { field, message } => Text::about(field, message),
            Self::Auth(a) => a.text(),
            Self::NotFound((zh, en)) => Text::new(format!("未找到{zh}"), format!("{en} not found")),
            Self::NotYourGrid(g) => tr!(
                "网格 {g} 不是您负责的网格",
                "grid {g} is not one of your grids"
            ),
            Self::AddressUnknown => tr!(
                "address：楼栋登记中没有与之匹配的楼栋",
                "address: no building of the registry matches it"
            ),
            Self::AccountTaken => tr!(
                "account：已有其他网格员使用这个账号登录",
                "account: another worker signs in with this account"
            ),
            Self::ImportExists => tr!(
                "import_id：这个编号的导入已经执行过，请换一个新编号",
                "import_id: an import with this id already ran; choose a new one"
            ),
            Self::AlreadyDone => tr!("该任务已经打过卡", "this task was already checked in"),
            Self::GridRetired(g) => tr!(
                "网格 {g} 已不存在（已拆分或合并）",
                "grid {g} no longer exists (split or merged)"
            ),
            Self::GridChanged => tr!(
                "事件所在网格已发生变化，请重新提交",
                "the event's grid changed meanwhile; send it again"
            ),
            Self::IllegalTransition(status) => {
                let zh = match status.as_str() {
                    "reported" => "已上报",
                    "closed" => "已办结",
                    "whistled" => "已吹哨",
                    other => other,
                };
                tr!("该事件{zh}", "the event is already {status}")
            }
            Self::LayerChanged { resend } => tr!(
                "网格已被同时修改（另一次导入、拆分或合并）；",
                "the grids changed meanwhile (another import, split or merge); "
            )
            .then(resend),
            Self::Stream(s) => status::problem(s).message,
            Self::Db(_) | Self::Pii(_) | Self::Internal(_) => status::internal_text(),
        }
    }
}

/// What a call may not find, as [`GridError::NotFound`] names it.
pub mod noun {
    /// Chinese and English.
    pub type Noun = (&'static str, &'static str);
    pub const GRID: Noun = ("网格", "grid");
    pub const WORKER: Noun = ("网格员", "worker");
    pub const HOUSEHOLD: Noun = ("住户", "household");
    pub const KEY_PERSON: Noun = ("重点人员", "key person");
    pub const DUTY_TASK: Noun = ("任务", "duty task");
    pub const GRID_EVENT: Noun = ("网格事件", "grid event");
    pub const IMPORT: Noun = ("导入任务", "import");
}

impl From<FieldError> for GridError {
    fn from(e: FieldError) -> Self {
        Self::Field {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<GridError> for Status {
    fn from(e: GridError) -> Self {
        let message = e.text();
        let coded = |grpc: Code, code: &str, field: Option<&str>| {
            status::coded(grpc, code, message.clone(), field)
        };
        match &e {
            GridError::Field { field, message } => status::invalid_field(field, message.clone()),
            GridError::Auth(a) => a.clone().into(),
            GridError::NotFound((zh, en)) => status::not_found(Text::new(*zh, *en)),
            GridError::NotYourGrid(_) => {
                coded(Code::PermissionDenied, "not_your_grid", Some("grid_code"))
            }
            GridError::AddressUnknown => coded(Code::NotFound, "address_unknown", Some("address")),
            GridError::AccountTaken => coded(Code::AlreadyExists, "account_taken", Some("account")),
            GridError::ImportExists => {
                coded(Code::AlreadyExists, "import_exists", Some("import_id"))
            }
            GridError::AlreadyDone => coded(Code::FailedPrecondition, "already_done", None),
            GridError::GridRetired(_) => coded(Code::FailedPrecondition, "grid_retired", None),
            GridError::GridChanged => coded(Code::Aborted, "grid_changed", None),
            GridError::IllegalTransition(_) => {
                coded(Code::FailedPrecondition, "illegal_transition", None)
            }
            GridError::LayerChanged { .. } => coded(Code::Aborted, "layer_changed", None),
            GridError::Stream(s) => s.clone(),
            GridError::Db(err) if jiesu_db::unreachable(err) => {
                tracing::warn!(error = %err, "grid database unreachable");
                status::database_unavailable()
            }
            GridError::Db(err) => {
                tracing::error!(error = %err, "grid database error");
                status::internal()
            }
            GridError::Pii(err) => {
                tracing::error!(error = %err, "grid personal-data key error");
                status::internal()
            }
            GridError::Internal(what) => {
                tracing::error!(error = %what, "grid internal error");
                status::internal()
            }
        }
    }
}

/// Lists problems in one refusal of `field`, at most 20 shown.
pub fn refuse(field: &str, problems: &[Text]) -> GridError {
    let shown = Text::join(problems.iter().take(20));
    let more = problems.len().saturating_sub(20);
    let tail = if more > 0 {
        tr!("（另有 {more} 处）", " (and {more} more)")
    } else {
        Text::default()
    };
    GridError::field(field, shown.then(&tail))
}

/// An id the caller sent. Grid's refusal reads "must be a UUID" (the
/// common parser's wording differs; grid's callers know this one).
pub fn parse_id(field: &str, raw: &str) -> Result<uuid::Uuid, GridError> {
    jiesu_common::ids::parse_id(field, raw)
        .map_err(|e| GridError::field(e.field, tr!("必须是 UUID", "must be a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiesu_proto::status::problem;

    /// A refusal, and its gRPC code, `jiesu-code`, field and message in
    /// Chinese and English.
    type Case = (
        GridError,
        Code,
        &'static str,
        Option<&'static str>,
        [&'static str; 2],
    );

    #[test]
    fn each_refusal_keeps_its_code_field_and_message() {
        let cases: Vec<Case> = vec![
            (
                GridError::field("lat", tr!("必须是纬度", "must be a latitude")),
                Code::InvalidArgument,
                "invalid_field",
                Some("lat"),
                ["lat：必须是纬度", "lat: must be a latitude"],
            ),
            (
                GridError::NotFound(noun::GRID_EVENT),
                Code::NotFound,
                "not_found",
                None,
                ["未找到网格事件", "grid event not found"],
            ),
            (
                GridError::NotYourGrid("G1".into()),
                Code::PermissionDenied,
                "not_your_grid",
                Some("grid_code"),
                [
                    "网格 G1 不是您负责的网格",
                    "grid G1 is not one of your grids",
                ],
            ),
            (
                GridError::AddressUnknown,
                Code::NotFound,
                "address_unknown",
                Some("address"),
                [
                    "address：楼栋登记中没有与之匹配的楼栋",
                    "address: no building of the registry matches it",
                ],
            ),
            (
                GridError::AccountTaken,
                Code::AlreadyExists,
                "account_taken",
                Some("account"),
                [
                    "account：已有其他网格员使用这个账号登录",
                    "account: another worker signs in with this account",
                ],
            ),
            (
                GridError::ImportExists,
                Code::AlreadyExists,
                "import_exists",
                Some("import_id"),
                [
                    "import_id：这个编号的导入已经执行过，请换一个新编号",
                    "import_id: an import with this id already ran; choose a new one",
                ],
            ),
            (
                GridError::AlreadyDone,
                Code::FailedPrecondition,
                "already_done",
                None,
                ["该任务已经打过卡", "this task was already checked in"],
            ),
            (
                GridError::GridRetired("G1".into()),
                Code::FailedPrecondition,
                "grid_retired",
                None,
                [
                    "网格 G1 已不存在（已拆分或合并）",
                    "grid G1 no longer exists (split or merged)",
                ],
            ),
            (
                GridError::GridChanged,
                Code::Aborted,
                "grid_changed",
                None,
                [
                    "事件所在网格已发生变化，请重新提交",
                    "the event's grid changed meanwhile; send it again",
                ],
            ),
            (
                GridError::IllegalTransition("closed".into()),
                Code::FailedPrecondition,
                "illegal_transition",
                None,
                ["该事件已办结", "the event is already closed"],
            ),
            (
                GridError::LayerChanged {
                    resend: tr!("请重新发送图层", "send the layer again"),
                },
                Code::Aborted,
                "layer_changed",
                None,
                [
                    "网格已被同时修改（另一次导入、拆分或合并）；请重新发送图层",
                    "the grids changed meanwhile (another import, split or merge); send the layer again",
                ],
            ),
            (
                GridError::Db(DbErr::Custom("10.0.0.3 refused".into())),
                Code::Internal,
                "internal",
                None,
                ["内部错误", "internal error"],
            ),
            (
                GridError::Auth(AuthError::Forbidden(jiesu_auth::needs_role(&[
                    jiesu_auth::Role::Supervisor,
                ]))),
                Code::PermissionDenied,
                "forbidden",
                None,
                [
                    "此操作需要以下角色之一：督办人员",
                    "this action needs one of the roles: supervisor",
                ],
            ),
        ];
        for (e, grpc, code, field, [zh, en]) in cases {
            let s = Status::from(e);
            let p = problem(&s);
            assert_eq!(
                (
                    s.code(),
                    p.code.as_str(),
                    p.field.as_deref(),
                    p.message.zh.as_str(),
                    p.message.en.as_str()
                ),
                (grpc, code, field, zh, en)
            );
        }
    }

    #[test]
    fn problems_are_listed_up_to_twenty() {
        let many: Vec<Text> = (0..23)
            .map(|i| Text::new(format!("问题{i}"), format!("p{i}")))
            .collect();
        let e = refuse("csv", &many).text();
        assert!(e.en.ends_with("p19 (and 3 more)"), "{e:?}");
        assert!(e.zh.ends_with("问题19（另有 3 处）"), "{e:?}");
        let two = refuse("csv", &many[..2]).text();
        assert_eq!(
            (two.zh.as_str(), two.en.as_str()),
            ("csv：问题0；问题1", "csv: p0; p1")
        );
        let id = parse_id("task_id", "42").err().map(|e| e.text());
        assert_eq!(
            id,
            Some(tr!("task_id：必须是 UUID", "task_id: must be a UUID"))
        );
    }
}
