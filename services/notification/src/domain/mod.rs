//! What a notification says (zh-CN) and when a failed delivery is retried.

use std::time::Duration;

use jiesu_proto::{dispatch::TicketDispatched, intake::TicketMerged};

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_SENT: &str = "sent";
pub const STATUS_FAILED: &str = "failed";

/// Deliveries of one notification before it is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// Title and body telling a unit it has a new work order. Carries only the
/// tracking number and category: never the citizen's data.
pub fn new_work_order(ev: &TicketDispatched) -> (String, String) {
    let title = "新工单待签收".to_owned();
    let category = if ev.category_name.is_empty() {
        ev.category.as_str()
    } else {
        ev.category_name.as_str()
    };
    let body = format!(
        "【接诉即办】{}：您单位有一件新工单待签收。工单编号 {}，诉求类别：{}。请登录平台及时签收办理。",
        ev.unit_name, ev.tracking_no, category
    );
    (title, body)
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

/// Wait before delivery attempt `attempt + 1` (attempt counts from 1).
pub fn retry_delay(attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 10) - 1).unwrap_or(0);
    Duration::from_secs(5 * 2u64.pow(exp)).min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn retries_back_off_and_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(20), Duration::from_secs(2560));
    }
}
