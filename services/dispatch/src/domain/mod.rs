//! Dispatch's pure rules. For now: what happens to a new ticket given the
//! routing table's answer. (SLAs, escalation and the work-order state machine
//! come with the dispatch issue.)

pub mod calendar;
pub mod clock;
pub mod responsibility;
pub mod sla;
pub mod workflow;

/// Work-order status names.
pub const STATUS_TRIAGE: &str = "triage";
pub const STATUS_DISPATCHED: &str = "dispatched";

/// Where a received ticket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Straight to the responsible unit, with its co-handlers (id, name).
    Unit {
        id: String,
        name: String,
        co: Vec<(String, String)>,
    },
    /// Nobody is responsible for the category here: a dispatcher decides.
    Triage,
    /// The point lies outside the tenant's territory: a dispatcher checks
    /// it (a wrong pin, or a matter for another city).
    Outside,
}

impl Placement {
    pub fn status(&self) -> &'static str {
        match self {
            Placement::Unit { .. } => STATUS_DISPATCHED,
            Placement::Triage | Placement::Outside => STATUS_TRIAGE,
        }
    }

    /// Timeline note (zh-CN).
    pub fn note(&self) -> String {
        match self {
            Placement::Unit { name, co, .. } if co.is_empty() => {
                format!("已按责任清单派单至{name}")
            }
            Placement::Unit { name, co, .. } => {
                let names: Vec<&str> = co.iter().map(|(_, n)| n.as_str()).collect();
                format!("已按责任清单派单至{name}，协办：{}", names.join("、"))
            }
            Placement::Triage => "未匹配到责任单位，已转调度员研判".to_owned(),
            Placement::Outside => {
                "诉求位置不在本辖区网格范围内，请核实位置，已转调度员研判".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_decides_status_and_note() {
        let p = Placement::Unit {
            id: "u1".into(),
            name: "区住建局".into(),
            co: vec![("u2".into(), "区城管局".into())],
        };
        assert_eq!(p.status(), "dispatched");
        assert_eq!(p.note(), "已按责任清单派单至区住建局，协办：区城管局");
        assert_eq!(Placement::Triage.status(), "triage");
    }
}
