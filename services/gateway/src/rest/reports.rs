//! The monthly report (月度通报): data for the console, and the same as a
//! CSV or an XLSX workbook with Chinese headers.

use jiesu_proto::evaluation::GetMonthlyReportRequest;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::{
    evaluation::{FormulaView, RateRowView, WarningView, name_regions},
    hotspots::HotspotView,
    prelude::*,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(monthly_report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `YYYY-MM`.
    pub month: String,
    /// `json` (default), `csv` or `xlsx`.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthlyReportView {
    pub month: String,
    /// The whole scope, beside the month before (`previous`).
    pub total: Option<RateRowView>,
    /// Categories by requests (top 10).
    pub top_problems: Vec<HotspotView>,
    pub best_units: Vec<RateRowView>,
    pub worst_units: Vec<RateRowView>,
    pub units: Vec<RateRowView>,
    pub streets: Vec<RateRowView>,
    /// Tenants side by side (a city's counties).
    pub tenants: Vec<RateRowView>,
    /// Warnings open at any time in the month.
    pub warnings: Vec<WarningView>,
    pub formula: Option<FormulaView>,
}

/// The month's report: totals, top problems, best and worst units, units
/// and streets ranked with their change, counties side by side, warnings.
/// `format=csv` or `xlsx` downloads it with Chinese headers.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/reports/monthly",
    tag = "evaluation",
    params(ReportQuery),
    responses(
        (status = 200, description = "The report (JSON), or its file", body = MonthlyReportView,
         content(
            (MonthlyReportView = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
         )),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn monthly_report(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "xlsx") {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
            tr!("必须是 json、csv 或 xlsx", "must be json, csv or xlsx"),
        ));
    }
    let r = state
        .evaluation(&caller)
        .retried(
            GetMonthlyReportRequest {
                month: q.month.clone(),
            },
            async |mut c, r| c.get_monthly_report(r).await,
        )
        .await?;
    let rows = |v: Vec<jiesu_proto::evaluation::RateRow>| -> Vec<RateRowView> {
        v.into_iter().map(Into::into).collect()
    };
    let mut report = MonthlyReportView {
        month: r.month,
        total: r.total.map(Into::into),
        top_problems: r.top_problems.into_iter().map(Into::into).collect(),
        best_units: rows(r.best_units),
        worst_units: rows(r.worst_units),
        units: rows(r.units),
        streets: rows(r.streets),
        tenants: rows(r.tenants),
        warnings: r.warnings.into_iter().map(Into::into).collect(),
        formula: r.formula.map(Into::into),
    };
    name_regions(&state, &caller, &mut report.streets).await;
    name_regions(&state, &caller, &mut report.tenants).await;
    // The month as evaluation read it (YYYY-MM), never the raw query.
    let month = report.month.clone();
    let file = |ext: &str| format!("attachment; filename=\"jiesu-report-{month}.{ext}\"");
    match format {
        "csv" => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file("csv")),
            ],
            csv(&report),
        )
            .into_response()),
        "xlsx" => {
            let bytes = xlsx(&report).map_err(|e| {
                tracing::error!(error = %e, "report workbook not written");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    tr!("报表生成失败", "the workbook could not be written"),
                )
            })?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_owned(),
                    ),
                    (header::CONTENT_DISPOSITION, file("xlsx")),
                ],
                bytes,
            )
                .into_response())
        }
        _ => Ok(Json(report).into_response()),
    }
}

/// One cell: text, a count, a fraction shown as a percentage, or a score.
enum Cell {
    Text(String),
    Count(i64),
    Percent(Option<f64>),
    Score(Option<f64>),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Percent(Some(v)) => format!("{:.2}%", v * 100.0),
            Cell::Score(Some(v)) => format!("{v:.2}"),
            Cell::Percent(None) | Cell::Score(None) => String::new(),
        }
    }
}

/// A titled table.
struct Table {
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

const RATE_HEADERS: [&str; 14] = [
    "排名",
    "名称",
    "编码",
    "受理量",
    "不计入考核",
    "响应率",
    "解决率",
    "满意率",
    "综合得分",
    "按时签收率",
    "按时办结率",
    "当日解决率",
    "上期排名",
    "上期综合得分",
];

fn rate_row(r: &RateRowView) -> Vec<Cell> {
    let c = r.counts.as_ref();
    let n = |f: fn(&super::evaluation::CountsView) -> i64| Cell::Count(c.map_or(0, f));
    let rates = r.rates.as_ref();
    let p = |f: fn(&super::evaluation::RatesView) -> Option<f64>| Cell::Percent(rates.and_then(f));
    vec![
        if r.rank == 0 {
            Cell::Text("-".into())
        } else {
            Cell::Count(i64::from(r.rank))
        },
        Cell::Text(r.name.clone()),
        Cell::Text(r.key.clone()),
        n(|c| c.received),
        n(|c| c.excluded),
        p(|r| r.response),
        p(|r| r.resolution),
        p(|r| r.satisfaction),
        Cell::Score(rates.and_then(|r| r.composite)),
        p(|r| r.sign_on_time),
        p(|r| r.resolve_on_time),
        p(|r| r.same_day),
        if r.previous_rank == 0 {
            Cell::Text("-".into())
        } else {
            Cell::Count(i64::from(r.previous_rank))
        },
        Cell::Score(r.previous.as_ref().and_then(|p| p.composite)),
    ]
}

fn tables(r: &MonthlyReportView) -> Vec<Table> {
    let ranked = |title, rows: &[RateRowView]| Table {
        title,
        headers: RATE_HEADERS.to_vec(),
        rows: rows.iter().map(rate_row).collect(),
    };
    let metric = |m: &str| match m {
        "response" => "响应率",
        "resolution" => "解决率",
        "satisfaction" | "satisfaction_falling" => "满意率",
        "composite" => "综合得分",
        _ => "超期办结占比",
    };
    vec![
        ranked("总体情况", r.total.as_slice()),
        Table {
            title: "突出问题",
            headers: vec![
                "分类",
                "编码",
                "受理量",
                "上月",
                "去年同期",
                "环比",
                "同比",
                "是否上升",
            ],
            rows: r
                .top_problems
                .iter()
                .map(|h| {
                    vec![
                        Cell::Text(h.name.clone()),
                        Cell::Text(h.key.clone()),
                        Cell::Count(h.count),
                        Cell::Count(h.previous),
                        Cell::Count(h.last_year),
                        Cell::Percent(h.change_previous),
                        Cell::Percent(h.change_last_year),
                        Cell::Text(if h.rising { "是" } else { "否" }.into()),
                    ]
                })
                .collect(),
        },
        ranked("先进单位", &r.best_units),
        ranked("后进单位", &r.worst_units),
        ranked("街道排名", &r.streets),
        ranked("单位排名", &r.units),
        ranked("区县对比", &r.tenants),
        Table {
            title: "预警",
            headers: vec![
                "对象",
                "编码",
                "预警规则",
                "指标",
                "预警时数值",
                "预警线",
                "状态",
                "开始",
                "解除",
            ],
            rows: r
                .warnings
                .iter()
                .map(|w| {
                    let pct = w.metric != "composite";
                    let v = |x: f64| {
                        if pct {
                            Cell::Percent(Some(x))
                        } else {
                            Cell::Score(Some(x))
                        }
                    };
                    let day = |t: &Option<DateTime<Utc>>| {
                        Cell::Text(
                            t.map(|t| t.format("%Y-%m-%d").to_string())
                                .unwrap_or_default(),
                        )
                    };
                    vec![
                        Cell::Text(w.name.clone()),
                        Cell::Text(w.key.clone()),
                        Cell::Text(w.rule_name.clone()),
                        Cell::Text(metric(&w.metric).into()),
                        v(w.figure),
                        v(w.threshold),
                        Cell::Text(
                            if w.status == "open" {
                                "未解除"
                            } else {
                                "已解除"
                            }
                            .into(),
                        ),
                        day(&w.opened_at),
                        day(&w.cleared_at),
                    ]
                })
                .collect(),
        },
    ]
}

/// Every table one after the other, each under its title, with a byte
/// order mark so that Excel reads the Chinese as UTF-8.
fn csv(r: &MonthlyReportView) -> Vec<u8> {
    let mut w = ::csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    let _ = w.write_record([format!("接诉即办月度报告 {}", r.month)]);
    for t in tables(r) {
        let _ = w.write_record([""]);
        let _ = w.write_record([t.title]);
        let _ = w.write_record(&t.headers);
        for row in &t.rows {
            let _ = w.write_record(row.iter().map(Cell::csv));
        }
    }
    w.into_inner().unwrap_or_default()
}

/// One sheet per table.
fn xlsx(r: &MonthlyReportView) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.00%");
    let score = Format::new().set_num_format("0.00");
    for t in tables(r) {
        let sheet = book.add_worksheet();
        sheet.set_name(t.title)?;
        for (c, h) in t.headers.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            sheet.write_string_with_format(0, c, *h, &bold)?;
            sheet.set_column_width(c, 14)?;
        }
        for (i, row) in t.rows.iter().enumerate() {
            let y = u32::try_from(i + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Cell::Text(s) => sheet.write_string(y, c, s).map(drop)?,
                    Cell::Count(n) => sheet.write_number(y, c, *n as f64).map(drop)?,
                    Cell::Percent(Some(v)) => {
                        sheet.write_number_with_format(y, c, *v, &pct).map(drop)?
                    }
                    Cell::Score(Some(v)) => {
                        sheet.write_number_with_format(y, c, *v, &score).map(drop)?
                    }
                    Cell::Percent(None) | Cell::Score(None) => {}
                }
            }
        }
    }
    book.save_to_buffer()
}
