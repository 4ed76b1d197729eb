//! Evaluation's pure rules: what a ticket counts ([`counts`]), periods,
//! formulas and rates ([`rates`]), and the callback policy.

pub mod counts;
pub mod frequency;
pub mod hotspots;
pub mod rates;
pub mod warnings;

use jiesu_common::{Text, tr};
use serde::{Deserialize, Serialize};

/// Which closed tickets get a callback, by when, and how hard to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackPolicy {
    /// Natures called back; empty = every nature not in `skip_natures`.
    pub natures: Vec<String>,
    pub skip_natures: Vec<String>,
    pub due_hours: u32,
    pub max_attempts: u32,
    pub max_reopens: u32,
    /// The caller gets an SMS with a one-time link to rate the round.
    #[serde(default = "yes")]
    pub sms_invite: bool,
}

fn yes() -> bool {
    true
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        Self {
            natures: Vec::new(),
            skip_natures: vec!["praise".into()],
            due_hours: 72,
            max_attempts: 3,
            max_reopens: 2,
            sms_invite: true,
        }
    }
}

/// Natures intake knows.
pub const NATURES: [&str; 6] = [
    "consultation",
    "help",
    "complaint",
    "report",
    "suggestion",
    "praise",
];

impl CallbackPolicy {
    pub fn wants(&self, nature: &str) -> bool {
        if self.skip_natures.iter().any(|n| n == nature) {
            return false;
        }
        self.natures.is_empty() || self.natures.iter().any(|n| n == nature)
    }

    pub fn check(&self) -> Result<(), (&'static str, Text)> {
        for (field, list) in [
            ("natures", &self.natures),
            ("skip_natures", &self.skip_natures),
        ] {
            if let Some(bad) = list.iter().find(|n| !NATURES.contains(&n.as_str())) {
                return Err((
                    field,
                    tr!(
                        "未知的诉求性质“{}”（可选：{}）",
                        "unknown nature '{}' (one of: {})",
                        bad,
                        NATURES.join(", ")
                    ),
                ));
            }
        }
        if !(1..=720).contains(&self.due_hours) {
            return Err((
                "due_hours",
                tr!("必须在 1 到 720 之间", "must be between 1 and 720"),
            ));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err((
                "max_attempts",
                tr!("必须在 1 到 10 之间", "must be between 1 and 10"),
            ));
        }
        if self.max_reopens > 10 {
            return Err(("max_reopens", tr!("不能超过 10", "may not exceed 10")));
        }
        Ok(())
    }
}

/// Outcomes of a callback attempt that reached nobody willing to answer.
pub const FAILED_OUTCOMES: [&str; 4] = ["no_answer", "busy", "wrong_number", "refused"];

/// The status a round takes after a failed attempt, if it ends it.
pub fn after_failed_attempt(
    outcome: &str,
    attempts: u32,
    max_attempts: u32,
) -> Option<&'static str> {
    match outcome {
        "refused" => Some("refused"),
        "wrong_number" => Some("unreachable"),
        _ if attempts >= max_attempts => Some("unreachable"),
        _ => None,
    }
}

/// Reasons a reviewer may exclude a ticket from assessment.
pub const EXCLUSION_REASONS: [(&str, &str); 3] = [
    ("unreasonable", "不合理诉求"),
    ("duplicate", "重复诉求"),
    ("out_of_scope", "不属于受理范围"),
];

/// Chinese names of the satisfaction answers.
pub fn satisfaction_zh(s: &str) -> &'static str {
    match s {
        "satisfied" => "满意",
        "basic" => "基本满意",
        _ => "不满意",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_picks_natures_and_ends_rounds() {
        let p = CallbackPolicy::default();
        assert!(p.wants("complaint"));
        assert!(!p.wants("praise"));
        let only = CallbackPolicy {
            natures: vec!["complaint".into()],
            ..p.clone()
        };
        assert!(!only.wants("help"));
        assert_eq!(after_failed_attempt("no_answer", 2, 3), None);
        assert_eq!(after_failed_attempt("busy", 3, 3), Some("unreachable"));
        assert_eq!(
            after_failed_attempt("wrong_number", 1, 3),
            Some("unreachable")
        );
        assert_eq!(after_failed_attempt("refused", 1, 3), Some("refused"));
        let bad = CallbackPolicy {
            natures: vec!["anger".into()],
            ..p
        };
        assert_eq!(bad.check().err().map(|e| e.0), Some("natures"));
    }
}
