//! SLA policy: for a ticket's category and urgency, how long a unit has to
//! sign for the work order (签收), to give a first response, and to resolve
//! it (办结), in working hours or working days. Pure: the store loads a
//! tenant's rules, this module picks the rule and computes the deadlines on
//! the tenant's [`Calendar`].

use chrono::{DateTime, Duration, Utc};
use jiesu_common::{Text, tr};

use super::calendar::Calendar;

/// A limit in working time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Working hours (urgent matters).
    Hours(u32),
    /// Working days (ordinary matters).
    Days(u32),
}

impl Limit {
    /// Parses `4h` or `5d` (how tenant admins write limits).
    pub fn parse(raw: &str) -> Result<Self, Text> {
        let t = raw.trim();
        let last = t.char_indices().last().map_or(0, |(i, _)| i);
        let (n, unit) = t.split_at(last);
        let n: u32 = n.parse().map_err(|_| {
            tr!(
                "`{raw}` 不是 4h 或 5d 这样的时限",
                "`{raw}` is not a limit such as 4h or 5d"
            )
        })?;
        if n == 0 || n > 365 {
            return Err(tr!(
                "`{raw}` 必须在 1 到 365 之间",
                "`{raw}` must be between 1 and 365"
            ));
        }
        match unit {
            "h" => Ok(Self::Hours(n)),
            "d" => Ok(Self::Days(n)),
            _ => Err(tr!(
                "`{raw}` 必须以 h（工作小时）或 d（工作日）结尾",
                "`{raw}` must end in h (working hours) or d (working days)"
            )),
        }
    }

    /// The working time this limit stands for on `cal`.
    pub fn duration(self, cal: &Calendar) -> Duration {
        match self {
            Self::Hours(h) => Duration::hours(i64::from(h)),
            Self::Days(d) => cal.day_length() * i32::try_from(d).unwrap_or(i32::MAX),
        }
    }

    /// The deadline this limit sets from `from`.
    pub fn deadline(self, cal: &Calendar, from: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Hours(h) => cal.add(from, Duration::hours(i64::from(h))),
            Self::Days(d) => cal.add_days(from, d),
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hours(h) => write!(f, "{h}h"),
            Self::Days(d) => write!(f, "{d}d"),
        }
    }
}

/// One rule of a tenant's policy. `category` is a category code or a
/// prefix of one (a group such as `CG` covers `CG0101`); empty matches
/// every category. `urgency` is `normal` or `urgent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub category: String,
    pub urgency: String,
    pub sign_for: Limit,
    pub first_response: Limit,
    pub resolve: Limit,
}

/// Deadlines of one work order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub sign_for: DateTime<Utc>,
    pub first_response: DateTime<Utc>,
    pub resolve: DateTime<Utc>,
}

/// A tenant's rules, most specific first when asked.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// What a tenant gets before it sets its own rules: urgent matters within
/// working hours, ordinary ones within working days. Placeholders a tenant
/// admin is expected to replace with the tenant's own limits.
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule {
            category: String::new(),
            urgency: "normal".into(),
            sign_for: Limit::Hours(2),
            first_response: Limit::Days(1),
            resolve: Limit::Days(15),
        },
        Rule {
            category: String::new(),
            urgency: "urgent".into(),
            sign_for: Limit::Hours(1),
            first_response: Limit::Hours(2),
            resolve: Limit::Hours(24),
        },
    ]
}

impl Policy {
    /// Refuses two rules for the same category and urgency, naming them.
    pub fn new(rules: Vec<Rule>) -> Result<Self, Text> {
        for (i, a) in rules.iter().enumerate() {
            let (n, urgency) = (i + 1, &a.urgency);
            if !matches!(urgency.as_str(), "normal" | "urgent") {
                return Err(tr!(
                    "第 {n} 条规则：urgency 必须是 normal 或 urgent，而不是 `{urgency}`",
                    "rule {n}: urgency must be normal or urgent, not `{urgency}`"
                ));
            }
            if let Some(j) = rules[i + 1..]
                .iter()
                .position(|b| b.category == a.category && b.urgency == a.urgency)
            {
                let other = i + 2 + j;
                let category = if a.category.is_empty() {
                    "*"
                } else {
                    &a.category
                };
                return Err(tr!(
                    "第 {n} 条和第 {other} 条规则都设置了 `{category}` {urgency}",
                    "rules {n} and {other} both set `{category}` {urgency}"
                ));
            }
        }
        Ok(Self { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule for a category and urgency: the longest matching category
    /// prefix of that urgency; `None` if the policy has no rule at all for
    /// it (callers then use [`default_rules`]).
    pub fn rule(&self, category: &str, urgency: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.urgency == urgency && category.starts_with(r.category.as_str()))
            .max_by_key(|r| r.category.len())
    }

    /// Deadlines for a work order dispatched at `from`.
    pub fn deadlines(
        &self,
        cal: &Calendar,
        category: &str,
        urgency: &str,
        from: DateTime<Utc>,
    ) -> Deadlines {
        let fallback = default_rules();
        let rule = self.rule(category, urgency).unwrap_or_else(|| {
            let want = if urgency == "urgent" { 1 } else { 0 };
            &fallback[want]
        });
        Deadlines {
            sign_for: rule.sign_for.deadline(cal, from),
            first_response: rule.first_response.deadline(cal, from),
            resolve: rule.resolve.deadline(cal, from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::tests::cn;

    fn rule(category: &str, urgency: &str, s: &str, f: &str, r: &str) -> Result<Rule, Text> {
        Ok(Rule {
            category: category.into(),
            urgency: urgency.into(),
            sign_for: Limit::parse(s)?,
            first_response: Limit::parse(f)?,
            resolve: Limit::parse(r)?,
        })
    }

    #[test]
    fn limits_parse_and_refuse_with_a_reason() {
        assert_eq!(Limit::parse("4h"), Ok(Limit::Hours(4)));
        assert_eq!(Limit::parse(" 15d "), Ok(Limit::Days(15)));
        for bad in ["", "h", "0h", "4", "4w", "-1d", "999d", "1.5h", "4天", "天"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_rule_wins_and_defaults_cover_the_rest() -> Result<(), Text> {
        let p = Policy::new(vec![
            rule("", "normal", "4h", "2d", "10d")?,
            rule("CG", "normal", "2h", "1d", "5d")?,
            rule("CG0201", "normal", "1h", "4h", "2d")?,
            rule("CG", "urgent", "1h", "2h", "8h")?,
        ])?;
        let category = |c: &str, u: &str| p.rule(c, u).map(|r| r.category.clone());
        assert_eq!(category("CG0201", "normal").as_deref(), Some("CG0201"));
        assert_eq!(category("CG0101", "normal").as_deref(), Some("CG"));
        assert_eq!(category("SH0101", "normal").as_deref(), Some(""));
        assert_eq!(category("CG0101", "urgent").as_deref(), Some("CG"));
        assert!(p.rule("SH0101", "urgent").is_none());

        let cal = Calendar::national();
        // Dispatched Tue 2026-03-10 10:00.
        let from = cn(2026, 3, 10, 10, 0);
        let d = p.deadlines(&cal, "CG0201", "normal", from);
        assert_eq!(d.sign_for, cn(2026, 3, 10, 11, 0));
        assert_eq!(d.first_response, cn(2026, 3, 10, 15, 0));
        assert_eq!(d.resolve, cn(2026, 3, 12, 10, 0));
        // No urgent rule for SH: the built-in urgent default. 24 working
        // hours: Tue 6 h, Wed 7, Thu 7, Fri 9-12 and 13-14.
        let d = p.deadlines(&cal, "SH0101", "urgent", from);
        assert_eq!(d.sign_for, cn(2026, 3, 10, 11, 0));
        assert_eq!(d.resolve, cn(2026, 3, 13, 14, 0));
        // Across the 2026 national day holiday.
        let d = p.deadlines(&cal, "CG0101", "normal", cn(2026, 9, 30, 16, 0));
        assert_eq!(d.sign_for, cn(2026, 10, 8, 10, 0));
        // One working day: Sep 30 16-17, then Oct 8 9-12 and 13-16.
        assert_eq!(d.first_response, cn(2026, 10, 8, 16, 0));
        Ok(())
    }

    #[test]
    fn conflicting_rules_are_named() -> Result<(), Text> {
        let err = Policy::new(vec![
            rule("CG", "normal", "2h", "1d", "5d")?,
            rule("SH", "normal", "2h", "1d", "5d")?,
            rule("CG", "normal", "1h", "1d", "5d")?,
        ])
        .err()
        .unwrap_or_default();
        assert!(err.en.contains("rules 1 and 3"), "{err:?}");
        assert!(err.zh.contains("第 1 条和第 3 条规则"), "{err:?}");
        let err = Policy::new(vec![rule("CG", "soon", "2h", "1d", "5d")?])
            .err()
            .unwrap_or_default();
        assert!(
            err.en.contains("urgency") && err.zh.contains("urgency"),
            "{err:?}"
        );
        Ok(())
    }
}
