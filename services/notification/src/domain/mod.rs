//! What a notification says (zh-CN): each event's variables, rendered
//! with the built-in templates (`crate::templates`), and how often a
//! delivery is tried.

use jiesu_proto::{
    dispatch::{TicketDispatched, WorkOrderNoticeIssued, WorkOrderWhistleBlown},
    intake::TicketMerged,
};
use serde_json::{Value, json};

use crate::templates;

/// Attempts of one notification on one channel before that channel is
/// given up (and the next of the chain taken).
pub const MAX_ATTEMPTS: i32 = 8;

/// A notice: its kind's variables (kept with it, to be rendered with the
/// tenant's template for the channel when sent) and the default text.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: &'static str,
    pub vars: Value,
    pub title: String,
    pub body: String,
}

impl Message {
    fn new(kind: &'static str, vars: Value) -> Self {
        let (title, body) = templates::default_message(kind, &vars);
        Self {
            kind,
            vars,
            title,
            body,
        }
    }

    /// (title, body) as the built-in template says it.
    pub fn text(&self) -> (String, String) {
        (self.title.clone(), self.body.clone())
    }
}

/// Tells a unit it has a new work order. Carries only the tracking number
/// and category: never the citizen's data. A reopened order (重办) says
/// so, how many times, and why.
pub fn new_work_order(ev: &TicketDispatched) -> Message {
    let category = if ev.category_name.is_empty() {
        ev.category.as_str()
    } else {
        ev.category_name.as_str()
    };
    Message::new(
        "ticket.dispatched",
        json!({"unit_name": ev.unit_name, "tracking_no": ev.tracking_no, "category": category,
               "reopens": ev.reopens, "reopen_reason": ev.reopen_reason}),
    )
}

/// A ticket's caller, addressed by the ticket id; the delivery channel asks
/// intake for the contact at the moment of sending.
pub const RECIPIENT_CITIZEN: &str = "citizen";
pub const CITIZEN_NAME: &str = "诉求人";

/// Tells a caller their request is handled together with an earlier one.
/// Carries tracking numbers only.
pub fn merged(ev: &TicketMerged) -> Message {
    Message::new(
        "ticket.merged",
        json!({"tracking_no": ev.tracking_no, "master_tracking_no": ev.master_tracking_no}),
    )
}

/// Where a message's one-time link goes: filled in only when sending.
pub const LINK: &str = "{link}";

/// What the API shows in the link's place.
pub const LINK_SHOWN: &str = "〔评价链接〕";

/// Asks the caller to rate the closed request through its one-time link
/// (the body's [`LINK`], the variable `link`, both filled in only when
/// sending). Tracking number and deadline only.
pub fn callback_invitation(ev: &jiesu_proto::evaluation::CallbackInvited) -> Message {
    Message::new(
        "callback.invited",
        json!({"tracking_no": ev.tracking_no, "expires": china_time(ev.expires_at.as_ref()),
               "link": LINK}),
    )
}

/// China time as people read it on a notice: `11月23日 09:00`.
fn china_time(ts: Option<&jiesu_proto::time::Timestamp>) -> String {
    let Some(t) = ts.and_then(jiesu_proto::time::from_timestamp) else {
        return "—".to_owned();
    };
    jiesu_common::time::in_china(t)
        .format("%m月%d日 %H:%M")
        .to_string()
}

/// A 三单 notice to the unit holding the work order (or, for a late
/// report-in, the summoned unit). Tracking number and deadline only.
pub fn work_order_notice(ev: &WorkOrderNoticeIssued) -> Message {
    let c = ev.change.clone().unwrap_or_default();
    let deadline = match ev.deadline.as_str() {
        "sign" => "签收",
        "respond" => "首次响应",
        "resolve" => "办结",
        _ => "报到",
    };
    let (notice, name) = match ev.notice.as_str() {
        "reminder" => ("reminder", "提醒单"),
        "urge" => ("urge", "催办单"),
        "supervise" => ("supervise", "督办单"),
        _ => ("report_in", "报到超时"),
    };
    Message::new(
        "work_order.notice_issued",
        json!({"notice": notice, "notice_name": name, "deadline": deadline,
               "due": china_time(ev.due_at.as_ref()), "unit_name": c.unit_name,
               "tracking_no": c.tracking_no}),
    )
}

/// Summons to report in (吹哨报到), one per summoned unit.
pub fn whistle(ev: &WorkOrderWhistleBlown, unit_name: &str) -> Message {
    let c = ev.change.clone().unwrap_or_default();
    let level = match c.level {
        2 => "重点",
        3 => "联合",
        4 => "攻坚",
        _ => "常规",
    };
    Message::new(
        "work_order.whistle_blown",
        json!({"unit_name": unit_name, "tracking_no": c.tracking_no, "level": c.level,
               "level_name": level, "report_due": china_time(ev.report_due.as_ref())}),
    )
}

/// Recipient kind of a grid's residents' group (居民群).
pub const RECIPIENT_GRID_GROUP: &str = "grid_group";

/// A broadcast to one grid's residents' group.
pub fn broadcast(ev: &jiesu_proto::grid::BroadcastRequested) -> Message {
    Message::new(
        "broadcast.requested",
        json!({"emergency": ev.kind == "emergency", "title": ev.title, "body": ev.body}),
    )
}

/// Supervisors of the tenant (督办人员), as one recipient.
pub const RECIPIENT_SUPERVISORS: &str = "supervisors";

/// How a warning's figure reads: a percentage, or a score.
fn figure(metric: &str, v: f64) -> String {
    if metric == "composite" {
        format!("{v:.1} 分")
    } else {
        format!("{:.1}%", v * 100.0)
    }
}

fn metric_zh(metric: &str) -> &'static str {
    match metric {
        "response" => "响应率",
        "resolution" => "解决率",
        "satisfaction" | "satisfaction_falling" => "满意率",
        "composite" => "综合得分",
        _ => "超期办结占比",
    }
}

fn warned(w: &jiesu_proto::evaluation::Warning) -> String {
    if w.name.is_empty() {
        w.key.clone()
    } else {
        w.name.clone()
    }
}

/// An early warning (预警) to the unit and the supervisors.
pub fn warning_raised(w: &jiesu_proto::evaluation::Warning) -> Message {
    Message::new(
        "warning.raised",
        json!({"who": warned(w), "metric_name": metric_zh(&w.metric),
               "falling": w.metric == "satisfaction_falling",
               "side": if w.metric == "late_share" { "高于" } else { "低于" },
               "figure": figure(&w.metric, w.figure), "threshold": figure(&w.metric, w.threshold),
               "window_from": w.window_from, "window_to": w.window_to, "base": w.base,
               "rule_name": w.rule_name}),
    )
}

/// The warning lifted: the figure recovered (or the rule was retired).
pub fn warning_cleared(w: &jiesu_proto::evaluation::Warning) -> Message {
    Message::new(
        "warning.cleared",
        json!({"who": warned(w), "metric_name": metric_zh(&w.metric),
               "figure": figure(&w.metric, w.cleared_figure), "rule_name": w.rule_name}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_says_whether_it_is_an_emergency() {
        let ev = jiesu_proto::grid::BroadcastRequested {
            kind: "emergency".into(),
            title: "台风预警".into(),
            body: "关好门窗".into(),
            ..Default::default()
        };
        assert_eq!(broadcast(&ev).title, "【紧急通知】台风预警");
        let ev = jiesu_proto::grid::BroadcastRequested {
            kind: "command".into(),
            ..ev
        };
        assert_eq!(broadcast(&ev).title, "【工作通知】台风预警");
    }

    #[test]
    fn message_names_the_unit_and_ticket_only() {
        let ev = TicketDispatched {
            unit_name: "区住建局".into(),
            tracking_no: "370202-20261122-00001".into(),
            category_name: "物业管理".into(),
            ..Default::default()
        };
        let (title, body) = new_work_order(&ev).text();
        assert_eq!(title, "新工单待签收");
        assert!(body.contains("区住建局"));
        assert!(body.contains("370202-20261122-00001"));
        assert!(body.contains("物业管理"));
        let again = TicketDispatched {
            reopens: 1,
            reopen_reason: "诉求人反映噪音仍在".into(),
            ..ev
        };
        let (title, body) = new_work_order(&again).text();
        assert_eq!(title, "重办工单待签收");
        assert!(body.contains("第1次重办"), "{body}");
        assert!(body.contains("诉求人反映噪音仍在"), "{body}");
    }

    #[test]
    fn merge_message_names_both_tickets_only() {
        let ev = TicketMerged {
            tracking_no: "370202-20261122-00002".into(),
            master_tracking_no: "370202-20261122-00001".into(),
            ..Default::default()
        };
        let (title, body) = merged(&ev).text();
        assert_eq!(title, "诉求已合并办理");
        assert!(body.contains("370202-20261122-00002"));
        assert!(body.contains("370202-20261122-00001"));
    }

    #[test]
    fn notices_name_the_unit_ticket_and_china_time_of_the_deadline() {
        use jiesu_proto::dispatch::WorkOrderChange;
        let change = WorkOrderChange {
            unit_name: "八大峡街道办事处".into(),
            tracking_no: "370202-20261122-00003".into(),
            level: 3,
            ..Default::default()
        };
        // 2026-11-23 01:00 UTC is 09:00 in China.
        let due = Some(jiesu_proto::time::Timestamp {
            seconds: 1_795_395_600,
            nanos: 0,
        });
        let ev = WorkOrderNoticeIssued {
            change: Some(change.clone()),
            notice: "supervise".into(),
            deadline: "resolve".into(),
            due_at: due,
        };
        let (title, body) = work_order_notice(&ev).text();
        assert_eq!(title, "督办单");
        assert_eq!(
            body,
            "【接诉即办·督办单】八大峡街道办事处：工单 370202-20261122-00003 办结已超期（时限11月23日 09:00），已列入督办，请说明情况并加快办理。"
        );
        let w = WorkOrderWhistleBlown {
            change: Some(change),
            unit_ids: vec!["sn-bdx".into()],
            unit_names: vec!["八大峡街道办事处".into()],
            report_due: due,
        };
        let (_, body) = whistle(&w, "八大峡街道办事处").text();
        assert!(
            body.contains("联合处置（3级）") && body.contains("11月23日 09:00前报到"),
            "{body}"
        );
    }
}
