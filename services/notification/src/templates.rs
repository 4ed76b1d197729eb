//! Message templates (decision 0032): what each kind of notice says, per
//! channel, as minijinja templates over the notice's variables. The
//! built-in defaults below ship with the code; a tenant admin may replace
//! any of them for one channel (`sms`, `email`, `wecom`, `webhook`) or for
//! all (`*`) through the API. A template is checked before it is saved: it
//! parses, it names only the kind's variables, and rendered with the
//! kind's sample it fits the channel's length limit. A notification keeps
//! its variables; it is rendered with the tenant's template for the
//! channel at the moment it is sent, so an edit takes effect for every
//! message not yet sent.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

/// Channels a template can be written for; `*` is every channel.
pub const CHANNELS: &[&str] = &["*", "sms", "email", "wecom", "webhook"];

/// A kind of notice: its variables (name, meaning) and its defaults.
pub struct Kind {
    pub name: &'static str,
    pub zh: &'static str,
    pub vars: &'static [(&'static str, &'static str)],
    pub title: &'static str,
    pub body: &'static str,
    /// Variables of a realistic notice, for previews and checks.
    pub sample: fn() -> Value,
}

pub const KINDS: &[Kind] = &[
    Kind {
        name: "ticket.dispatched",
        zh: "新工单（含重办）通知承办单位",
        vars: &[
            ("unit_name", "承办单位名称"),
            ("tracking_no", "工单编号"),
            ("category", "诉求类别"),
            ("reopens", "重办次数（0 表示首次派单）"),
            ("reopen_reason", "重办原因"),
        ],
        title: "{% if reopens > 0 %}重办工单待签收{% else %}新工单待签收{% endif %}",
        body: "{% if reopens > 0 %}【接诉即办】{{ unit_name }}：工单 {{ tracking_no }}（诉求类别：{{ category }}）经回访未解决，现第{{ reopens }}次重办。{% if reopen_reason %}重办原因：{{ reopen_reason }}。{% endif %}请登录平台重新签收办理。{% else %}【接诉即办】{{ unit_name }}：您单位有一件新工单待签收。工单编号 {{ tracking_no }}，诉求类别：{{ category }}。请登录平台及时签收办理。{% endif %}",
        sample: || {
            json!({"unit_name": "市南区市场监督管理局", "tracking_no": "370202-20261207-00001",
                   "category": "预付卡消费", "reopens": 0, "reopen_reason": ""})
        },
    },
    Kind {
        name: "ticket.merged",
        zh: "诉求合并办理告知诉求人",
        vars: &[
            ("tracking_no", "诉求人的受理编号"),
            ("master_tracking_no", "合并到的受理编号"),
        ],
        title: "诉求已合并办理",
        body: "【接诉即办】您反映的诉求（受理编号 {{ tracking_no }}）与受理编号 {{ master_tracking_no }} 的诉求为同一问题，已合并办理，办理进展和结果将一并告知您。可凭受理编号和手机号后四位查询进度。",
        sample: || json!({"tracking_no": "370202-20261207-00002", "master_tracking_no": "370202-20261207-00001"}),
    },
    Kind {
        name: "callback.invited",
        zh: "办理结果评价邀请（一次性链接）",
        vars: &[
            ("tracking_no", "受理编号"),
            ("expires", "链接有效期（如 11月23日 09:00）"),
            ("link", "一次性评价链接（发送时填入）"),
        ],
        title: "办理结果评价邀请",
        body: "【接诉即办】您反映的诉求（受理编号 {{ tracking_no }}）已办结，请点击 {{ link }} 评价办理结果（{{ expires }}前有效）。如问题未解决，请在评价中选择“未解决”并说明情况。",
        sample: || {
            json!({"tracking_no": "370202-20261207-00003", "expires": "12月10日 09:00",
                   "link": "https://12345.example.gov.cn/r/XXXXXXXX"})
        },
    },
    Kind {
        name: "work_order.notice_issued",
        zh: "三单（提醒单、催办单、督办单）与报到超时",
        vars: &[
            ("notice", "reminder、urge、supervise 或 report_in"),
            ("notice_name", "提醒单、催办单、督办单或报到超时"),
            ("deadline", "签收、首次响应、办结或报到"),
            ("due", "时限（如 11月23日 09:00）"),
            ("unit_name", "承办单位名称"),
            ("tracking_no", "工单编号"),
        ],
        title: "{{ notice_name }}",
        body: "【接诉即办·{{ notice_name }}】{{ unit_name }}：工单 {{ tracking_no }} {% if notice == 'reminder' %}{{ deadline }}时限为{{ due }}，即将到期，请抓紧办理。{% elif notice == 'urge' %}已到{{ deadline }}时限（{{ due }}），请立即办理。{% elif notice == 'supervise' %}{{ deadline }}已超期（时限{{ due }}），已列入督办，请说明情况并加快办理。{% else %}贵单位被吹哨召集，报到时限{{ due }}已过，请尽快报到。{% endif %}",
        sample: || {
            json!({"notice": "urge", "notice_name": "催办单", "deadline": "办结", "due": "12月08日 17:00",
                   "unit_name": "八大峡街道办事处", "tracking_no": "370202-20261207-00004"})
        },
    },
    Kind {
        name: "work_order.whistle_blown",
        zh: "吹哨报到召集",
        vars: &[
            ("unit_name", "被召集单位名称"),
            ("tracking_no", "工单编号"),
            ("level", "处置级别（1–4）"),
            ("level_name", "常规、重点、联合或攻坚"),
            ("report_due", "报到时限（如 11月23日 09:00）"),
        ],
        title: "吹哨报到",
        body: "【接诉即办·吹哨报到】{{ unit_name }}：工单 {{ tracking_no }} 已升级为{{ level_name }}处置（{{ level }}级），请于{{ report_due }}前报到并参与办理。",
        sample: || {
            json!({"unit_name": "市南区城市管理局", "tracking_no": "370202-20261207-00005",
                   "level": 3, "level_name": "联合", "report_due": "12月08日 12:00"})
        },
    },
    Kind {
        name: "broadcast.requested",
        zh: "网格居民群通知",
        vars: &[
            ("emergency", "是否紧急通知（true/false）"),
            ("title", "通知标题"),
            ("body", "通知正文"),
        ],
        title: "【{% if emergency %}紧急通知{% else %}工作通知{% endif %}】{{ title }}",
        body: "{{ body }}",
        sample: || json!({"emergency": false, "title": "停水通知", "body": "明日9:00至17:00停水检修，请提前储水。"}),
    },
    Kind {
        name: "warning.raised",
        zh: "考核预警",
        vars: &[
            ("who", "被预警的单位或区域"),
            (
                "metric_name",
                "指标（响应率、解决率、满意率、综合得分、超期办结占比）",
            ),
            ("falling", "是否为满意率连续下降预警（true/false）"),
            ("side", "高于或低于"),
            ("figure", "当前值（如 71.3%）"),
            ("threshold", "预警线，或连续下降时的上一期值"),
            ("window_from", "统计起始日"),
            ("window_to", "统计截止日"),
            ("base", "统计件数"),
            ("rule_name", "预警规则名称"),
        ],
        title: "【预警】{{ who }}{{ metric_name }}",
        body: "{% if falling %}{{ who }}的满意率连续两个考核期下降，{{ window_from }}至{{ window_to }}为{{ figure }}（上一期{{ threshold }}，共{{ base }}件有效回访）。预警规则：{{ rule_name }}。请分析原因并整改。{% else %}{{ who }}{{ window_from }}至{{ window_to }}的{{ metric_name }}为{{ figure }}，{{ side }}预警线{{ threshold }}（共{{ base }}件）。预警规则：{{ rule_name }}。请分析原因并整改，指标恢复后预警自动解除。{% endif %}",
        sample: || {
            json!({"who": "八大峡街道", "metric_name": "解决率", "falling": false, "side": "低于",
                   "figure": "71.3%", "threshold": "75.0%", "window_from": "2026-11-01",
                   "window_to": "2026-11-30", "base": 143, "rule_name": "解决率低于75%"})
        },
    },
    Kind {
        name: "warning.cleared",
        zh: "考核预警解除",
        vars: &[
            ("who", "被预警的单位或区域"),
            ("metric_name", "指标"),
            ("figure", "恢复后的值"),
            ("rule_name", "预警规则名称"),
        ],
        title: "【预警解除】{{ who }}{{ metric_name }}",
        body: "{{ who }}的{{ metric_name }}已恢复至{{ figure }}，预警“{{ rule_name }}”解除。",
        sample: || json!({"who": "八大峡街道", "metric_name": "解决率", "figure": "78.2%", "rule_name": "解决率低于75%"}),
    },
];

/// A kind with no variables: every variable a source uses is "unknown" to
/// it (to list what a source uses).
pub const NO_VARIABLES: Kind = Kind {
    name: "",
    zh: "",
    vars: &[],
    title: "",
    body: "",
    sample: || Value::Null,
};

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Longest title, in characters.
pub const TITLE_MAX: usize = 100;

/// The longest body a channel takes: SMS in characters (a long SMS is at
/// most 500 with its sign), a WeCom robot message in bytes (one markdown
/// message), the others in characters.
pub fn body_fits(channel: &str, body: &str) -> Result<(), String> {
    match channel {
        "sms" if body.chars().count() > 500 => Err(format!(
            "短信正文不能超过 500 个字（示例渲染后为 {} 个字）",
            body.chars().count()
        )),
        "wecom" if body.len() > 4000 => Err(format!(
            "企业微信消息不能超过 4000 字节（示例渲染后为 {} 字节）",
            body.len()
        )),
        _ if body.chars().count() > 20_000 => Err("正文不能超过 20000 个字".to_owned()),
        _ => Ok(()),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A template that loops without end runs out of fuel instead.
    env.set_fuel(Some(50_000));
    env
}

/// Renders one template source with `vars`.
pub fn render(source: &str, vars: &Value) -> Result<String, String> {
    let env = environment();
    let t = env
        .template_from_str(source)
        .map_err(|e| format!("模板语法错误：{}", e.detail().unwrap_or("无法解析")))?;
    t.render(vars)
        .map_err(|e| format!("模板无法渲染：{}", e.detail().unwrap_or("渲染失败")))
}

/// The variables a template source uses that `kind` does not have.
pub fn unknown_variables(kind: &Kind, source: &str) -> Result<Vec<String>, String> {
    let env = environment();
    let t = env
        .template_from_str(source)
        .map_err(|e| format!("模板语法错误：{}", e.detail().unwrap_or("无法解析")))?;
    let mut unknown: Vec<String> = t
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !kind.vars.iter().any(|(name, _)| name == v))
        .collect();
    unknown.sort();
    Ok(unknown)
}

/// The default (title, body) of a kind for these variables.
pub fn default_message(kind_name: &str, vars: &Value) -> (String, String) {
    let Some(k) = kind(kind_name) else {
        return (kind_name.to_owned(), String::new());
    };
    // The defaults are checked by this module's tests against every kind's
    // sample; a failure here would be a bug in them, shown rather than lost.
    let title = render(k.title, vars).unwrap_or_else(|e| format!("{} ({e})", k.zh));
    let body = render(k.body, vars).unwrap_or_else(|e| e);
    (title, body)
}

/// The tenants' templates as the deliverer reads them: each (tenant, kind,
/// channel) asked of the database at most once per `TTL`, and forgotten
/// at once when this process saves or removes one. Another replica's edit
/// reaches this one within `TTL`.
/// (tenant, kind, channel) → when it was read, and the template if any.
type Entries = std::collections::HashMap<
    (String, String, String),
    (std::time::Instant, Option<crate::store::templates::Stored>),
>;

pub struct Cache {
    entries: std::sync::Mutex<Entries>,
}

impl Cache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn new() -> Self {
        Self {
            entries: std::sync::Mutex::default(),
        }
    }

    pub async fn get<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        kind: &str,
        channel: &str,
    ) -> Result<Option<crate::store::templates::Stored>, sea_orm::DbErr> {
        let key = (tenant.to_owned(), kind.to_owned(), channel.to_owned());
        if let Some((at, t)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < Self::TTL
        {
            return Ok(t.clone());
        }
        let t = crate::store::templates::for_channel(conn, tenant, kind, channel).await?;
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (std::time::Instant::now(), t.clone()));
        Ok(t)
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_renders_its_sample_and_names_only_its_variables() {
        for k in KINDS {
            for source in [k.title, k.body] {
                assert_eq!(
                    unknown_variables(k, source).unwrap(),
                    Vec::<String>::new(),
                    "{}",
                    k.name
                );
                let out = render(source, &(k.sample)()).unwrap();
                assert!(!out.is_empty(), "{}", k.name);
            }
            for (var, _) in k.vars {
                assert!(
                    (k.sample)().get(var).is_some(),
                    "{}: the sample lacks {var}",
                    k.name
                );
            }
            let (_, body) = default_message(k.name, &(k.sample)());
            body_fits("sms", &body).unwrap();
        }
    }

    #[test]
    fn an_unknown_variable_or_endless_template_is_refused() {
        let k = kind("ticket.dispatched").unwrap();
        assert_eq!(
            unknown_variables(k, "{{ unit_name }}{{ citizen_phone }}").unwrap(),
            vec!["citizen_phone".to_owned()]
        );
        assert!(unknown_variables(k, "{% if %}").is_err());
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(render(endless, &(k.sample)()).is_err());
    }
}
