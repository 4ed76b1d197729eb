//! What a notification says (zh-CN) and how often a delivery is tried.

use jiesu_proto::{
    dispatch::{TicketDispatched, WorkOrderNoticeIssued, WorkOrderWhistleBlown},
    intake::TicketMerged,
};

/// Attempts of one notification on one channel before that channel is
/// given up (and the next of the chain taken).
pub const MAX_ATTEMPTS: i32 = 8;

/// Title and body telling a unit it has a new work order. Carries only the
/// tracking number and category: never the citizen's data.
/// A reopened order (重办) says so, how many times, and why.
pub fn new_work_order(ev: &TicketDispatched) -> (String, String) {
    let category = if ev.category_name.is_empty() {
        ev.category.as_str()
    } else {
        ev.category_name.as_str()
    };
    if ev.reopens > 0 {
        let why = if ev.reopen_reason.is_empty() {
            String::new()
        } else {
            format!("重办原因：{}。", ev.reopen_reason)
        };
        let body = format!(
            "【接诉即办】{}：工单 {}（诉求类别：{}）经回访未解决，现第{}次重办。{}请登录平台重新签收办理。",
            ev.unit_name, ev.tracking_no, category, ev.reopens, why
        );
        return ("重办工单待签收".to_owned(), body);
    }
    let body = format!(
        "【接诉即办】{}：您单位有一件新工单待签收。工单编号 {}，诉求类别：{}。请登录平台及时签收办理。",
        ev.unit_name, ev.tracking_no, category
    );
    ("新工单待签收".to_owned(), body)
}

/// A ticket's caller, addressed by the ticket id; the delivery channel asks
/// intake for the contact at the moment of sending.
pub const RECIPIENT_CITIZEN: &str = "citizen";
pub const CITIZEN_NAME: &str = "诉求人";

/// Tells a caller their request is handled together with an earlier one.
/// Carries tracking numbers only.
pub fn merged(ev: &TicketMerged) -> (String, String) {
    let title = "诉求已合并办理".to_owned();
    let body = format!(
        "【接诉即办】您反映的诉求（受理编号 {}）与受理编号 {} 的诉求为同一问题，已合并办理，办理进展和结果将一并告知您。可凭受理编号和手机号后四位查询进度。",
        ev.tracking_no, ev.master_tracking_no
    );
    (title, body)
}

/// Where a message's one-time link goes: filled in only when sending.
pub const LINK: &str = "{link}";

/// What the API shows in the link's place.
pub const LINK_SHOWN: &str = "〔评价链接〕";

/// Asks the caller to rate the closed request through its one-time link
/// (the body's [`LINK`]). Tracking number and deadline only.
pub fn callback_invitation(ev: &jiesu_proto::evaluation::CallbackInvited) -> (String, String) {
    let title = "办理结果评价邀请".to_owned();
    let body = format!(
        "【接诉即办】您反映的诉求（受理编号 {}）已办结，请点击 {LINK} 评价办理结果（{}前有效）。如问题未解决，请在评价中选择“未解决”并说明情况。",
        ev.tracking_no,
        china_time(ev.expires_at.as_ref())
    );
    (title, body)
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
pub fn work_order_notice(ev: &WorkOrderNoticeIssued) -> (String, String) {
    let c = ev.change.clone().unwrap_or_default();
    let what = match ev.deadline.as_str() {
        "sign" => "签收",
        "respond" => "首次响应",
        "resolve" => "办结",
        _ => "报到",
    };
    let due = china_time(ev.due_at.as_ref());
    let (title, line) = match ev.notice.as_str() {
        "reminder" => (
            "提醒单",
            format!("{what}时限为{due}，即将到期，请抓紧办理。"),
        ),
        "urge" => ("催办单", format!("已到{what}时限（{due}），请立即办理。")),
        "supervise" => (
            "督办单",
            format!("{what}已超期（时限{due}），已列入督办，请说明情况并加快办理。"),
        ),
        _ => (
            "报到超时",
            format!("贵单位被吹哨召集，报到时限{due}已过，请尽快报到。"),
        ),
    };
    let body = format!(
        "【接诉即办·{title}】{}：工单 {} {line}",
        c.unit_name, c.tracking_no
    );
    (title.to_owned(), body)
}

/// Summons to report in (吹哨报到), one per summoned unit.
pub fn whistle(ev: &WorkOrderWhistleBlown, unit_name: &str) -> (String, String) {
    let c = ev.change.clone().unwrap_or_default();
    let level = match c.level {
        2 => "重点",
        3 => "联合",
        4 => "攻坚",
        _ => "常规",
    };
    let body = format!(
        "【接诉即办·吹哨报到】{unit_name}：工单 {} 已升级为{level}处置（{}级），请于{}前报到并参与办理。",
        c.tracking_no,
        c.level,
        china_time(ev.report_due.as_ref())
    );
    ("吹哨报到".to_owned(), body)
}

/// Recipient kind of a grid's residents' group (居民群).
pub const RECIPIENT_GRID_GROUP: &str = "grid_group";

/// A broadcast to one grid's residents' group: (title, body).
pub fn broadcast(ev: &jiesu_proto::grid::BroadcastRequested) -> (String, String) {
    let tag = if ev.kind == "emergency" {
        "紧急通知"
    } else {
        "工作通知"
    };
    (format!("【{tag}】{}", ev.title), ev.body.clone())
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
pub fn warning_raised(w: &jiesu_proto::evaluation::Warning) -> (String, String) {
    let who = warned(w);
    let title = format!("【预警】{who}{}", metric_zh(&w.metric));
    let body = if w.metric == "satisfaction_falling" {
        format!(
            "{who}的满意率连续两个考核期下降，{}至{}为{}（上一期{}，共{}件有效回访）。预警规则：{}。请分析原因并整改。",
            w.window_from,
            w.window_to,
            figure(&w.metric, w.figure),
            figure(&w.metric, w.threshold),
            w.base,
            w.rule_name
        )
    } else {
        let side = if w.metric == "late_share" {
            "高于"
        } else {
            "低于"
        };
        format!(
            "{who}{}至{}的{}为{}，{side}预警线{}（共{}件）。预警规则：{}。请分析原因并整改，指标恢复后预警自动解除。",
            w.window_from,
            w.window_to,
            metric_zh(&w.metric),
            figure(&w.metric, w.figure),
            figure(&w.metric, w.threshold),
            w.base,
            w.rule_name
        )
    };
    (title, body)
}

/// The warning lifted: the figure recovered (or the rule was retired).
pub fn warning_cleared(w: &jiesu_proto::evaluation::Warning) -> (String, String) {
    let who = warned(w);
    (
        format!("【预警解除】{who}{}", metric_zh(&w.metric)),
        format!(
            "{who}的{}已恢复至{}，预警“{}”解除。",
            metric_zh(&w.metric),
            figure(&w.metric, w.cleared_figure),
            w.rule_name
        ),
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
        assert_eq!(broadcast(&ev).0, "【紧急通知】台风预警");
        let ev = jiesu_proto::grid::BroadcastRequested {
            kind: "command".into(),
            ..ev
        };
        assert_eq!(broadcast(&ev).0, "【工作通知】台风预警");
    }

    #[test]
    fn message_names_the_unit_and_ticket_only() {
        let ev = TicketDispatched {
            unit_name: "区住建局".into(),
            tracking_no: "370202-20261122-00001".into(),
            category_name: "物业管理".into(),
            ..Default::default()
        };
        let (title, body) = new_work_order(&ev);
        assert_eq!(title, "新工单待签收");
        assert!(body.contains("区住建局"));
        assert!(body.contains("370202-20261122-00001"));
        assert!(body.contains("物业管理"));
        let again = TicketDispatched {
            reopens: 1,
            reopen_reason: "诉求人反映噪音仍在".into(),
            ..ev
        };
        let (title, body) = new_work_order(&again);
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
        let (title, body) = merged(&ev);
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
        let (title, body) = work_order_notice(&ev);
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
        let (_, body) = whistle(&w, "八大峡街道办事处");
        assert!(
            body.contains("联合处置（3级）") && body.contains("11月23日 09:00前报到"),
            "{body}"
        );
    }
}
