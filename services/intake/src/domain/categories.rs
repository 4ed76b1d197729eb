//! Importing and exporting a tenant's category tree (JSON or CSV), and the
//! rules a tree must follow: unique codes, known parents, no cycles, at most
//! three levels, valid attribute definitions.

use std::collections::{HashMap, HashSet};

use super::{FieldError, Text, attributes::check_definitions, bad, tr};
use crate::seed::CategorySeed;

pub const MAX_LEVELS: usize = 3;
pub const MAX_CATEGORIES: usize = 5000;
pub const MAX_NAME_CHARS: usize = 50;
/// Errors listed in one answer before "and N more".
const MAX_LISTED: usize = 10;

pub const CSV_HEADER: [&str; 6] = [
    "code",
    "name",
    "parent",
    "description",
    "keywords",
    "attributes",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Reads an import; row numbers in errors count the CSV header as row 1 and
/// JSON entries from 1. Every problem of the file is named in one answer
/// (up to ten, then how many more), rows and tree rules alike.
pub fn parse(format: Format, data: &[u8]) -> Result<Vec<CategorySeed>, FieldError> {
    let (cats, mut problems) = match format {
        Format::Json => {
            let cats = jiesu_runtime::json::parse_strict::<Vec<CategorySeed>>(data).map_err(
                |e| match e {
                    jiesu_runtime::json::JsonError::Syntax(m) => bad("data", m),
                    jiesu_runtime::json::JsonError::Data { field, message } => bad(
                        "data",
                        Text::new(
                            format!("条目 {field}：{}", message.zh),
                            format!("entry {field}: {}", message.en),
                        ),
                    ),
                },
            )?;
            (cats, Vec::new())
        }
        Format::Csv => parse_csv(data)?,
    };
    problems.extend(tree_problems(&cats));
    refuse(problems)?;
    Ok(cats)
}

/// The CSV's rows, and the problems of the rows that could not be read. The
/// header must name known columns only, each once, with `code`, `name` and
/// `parent` among them: a misspelt `parent` would otherwise flatten the
/// whole tree.
fn parse_csv(data: &[u8]) -> Result<(Vec<CategorySeed>, Vec<Text>), FieldError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| bad("data", tr!("不是有效的 UTF-8", "is not valid UTF-8")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad("data", tr!("第 1 行：", "row 1: ").then(&csv_reason(&e))))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let columns = CSV_HEADER.join(",");
    let mut wrong = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if !CSV_HEADER.contains(&h.as_str()) {
            wrong.push(tr!("未知的列 `{h}`", "unknown column `{h}`"));
        } else if header[..i].contains(h) {
            wrong.push(tr!("列 `{h}` 重复出现", "column `{h}` appears twice"));
        }
    }
    for needed in ["code", "name", "parent"] {
        if !header.iter().any(|h| h == needed) {
            wrong.push(tr!("缺少列 `{needed}`", "column `{needed}` is missing"));
        }
    }
    if !wrong.is_empty() {
        let wrong = Text::join(&wrong);
        return Err(bad(
            "data",
            Text::new(
                format!("第 1 行（表头）：{}（可用的列：{columns}）", wrong.zh),
                format!(
                    "row 1, the header: {} (the columns are {columns})",
                    wrong.en
                ),
            ),
        ));
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let (code, name, parent, description, keywords, attrs) = (
        col("code"),
        col("name"),
        col("parent"),
        col("description"),
        col("keywords"),
        col("attributes"),
    );
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let row = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(tr!("第 {row} 行：", "row {row}: ").then(&csv_reason(&e)));
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_owned();
        let attributes = match get(attrs).as_str() {
            "" => Vec::new(),
            json => match serde_json::from_str(json) {
                Ok(a) => a,
                Err(_) => {
                    problems.push(tr!(
                        "第 {row} 行：attributes 不是属性定义的 JSON 列表",
                        "row {row}: attributes is not a JSON list of attribute definitions"
                    ));
                    Vec::new()
                }
            },
        };
        out.push(CategorySeed {
            code: get(code),
            name: get(name),
            parent: get(parent),
            description: get(description),
            keywords: get(keywords),
            attributes,
        });
        if out.len() > MAX_CATEGORIES {
            break;
        }
    }
    Ok((out, problems))
}

/// Every rule a tree must follow; all problems found are listed (up to ten).
pub fn check_tree(cats: &[CategorySeed]) -> Result<(), FieldError> {
    refuse(tree_problems(cats))
}

/// What the csv reader could not read: its own words in English.
fn csv_reason(e: &csv::Error) -> Text {
    let zh = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("有 {len} 列，与表头的 {expected_len} 列不符"),
        csv::ErrorKind::Utf8 { .. } => "不是有效的 UTF-8".to_owned(),
        _ => "无法读取".to_owned(),
    };
    Text::new(zh, e.to_string())
}

/// One answer naming every problem (up to ten, then how many more).
fn refuse(problems: Vec<Text>) -> Result<(), FieldError> {
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len().saturating_sub(MAX_LISTED);
    let mut msg = Text::join(problems.iter().take(MAX_LISTED));
    if more > 0 {
        msg = msg.then(&tr!("；另有 {more} 处", "; and {more} more"));
    }
    Err(bad("data", msg))
}

fn tree_problems(cats: &[CategorySeed]) -> Vec<Text> {
    let mut problems = Vec::new();
    if cats.is_empty() {
        return vec![tr!("没有任何分类", "holds no categories")];
    }
    if cats.len() > MAX_CATEGORIES {
        return vec![tr!(
            "分类超过 {MAX_CATEGORIES} 个",
            "holds more than {MAX_CATEGORIES} categories"
        )];
    }
    let mut seen = HashSet::new();
    for (i, c) in cats.iter().enumerate() {
        let (n, code) = (i + 1, c.code.chars().take(32).collect::<String>());
        let at = tr!("第 {n} 条（{code}）：", "entry {n} ({code}): ");
        if !is_code(&c.code) {
            problems.push(at.clone().then(&tr!(
                "code 必须是 1 到 32 个 A-Z a-z 0-9 _ - . 字符",
                "code must be 1 to 32 of A-Z a-z 0-9 _ - ."
            )));
        }
        if !seen.insert(c.code.as_str()) {
            problems.push(at.clone().then(&tr!("code 重复出现", "code appears twice")));
        }
        let name = c.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            problems.push(at.clone().then(&tr!(
                "name 必须是 1 到 {MAX_NAME_CHARS} 个字符，且不含控制字符",
                "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            )));
        }
        if c.description.chars().count() > 500 || c.keywords.chars().count() > 500 {
            problems.push(at.clone().then(&tr!(
                "description 和 keywords 各最多 500 个字符",
                "description and keywords are at most 500 characters each"
            )));
        }
        if let Err(e) = check_definitions(&c.attributes) {
            problems.push(at.clone().then(&e));
        }
    }
    let by_code: HashMap<&str, &CategorySeed> = cats.iter().map(|c| (c.code.as_str(), c)).collect();
    for c in cats {
        if c.parent.is_empty() {
            continue;
        }
        if !by_code.contains_key(c.parent.as_str()) {
            let (code, parent) = (&c.code, &c.parent);
            problems.push(tr!(
                "{code}：上级 {parent} 不在导入的数据中",
                "{code}: parent {parent} is not in the import"
            ));
            continue;
        }
        // Walk up: a cycle or a fourth level is refused.
        let mut depth = 1;
        let mut cur = c;
        while !cur.parent.is_empty() {
            depth += 1;
            match by_code.get(cur.parent.as_str()) {
                Some(p) => cur = p,
                None => break,
            }
            if depth > MAX_LEVELS {
                let code = &c.code;
                problems.push(tr!(
                    "{code}：层级超过 {MAX_LEVELS} 级（或出现循环）",
                    "{code}: deeper than {MAX_LEVELS} levels (or a cycle)"
                ));
                break;
            }
        }
    }
    problems
}

/// The tree as a file in the chosen format, parents before children.
pub fn export(format: Format, cats: &[CategorySeed]) -> Result<Vec<u8>, String> {
    match format {
        Format::Json => serde_json::to_vec_pretty(cats).map_err(|e| e.to_string()),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(CSV_HEADER).map_err(|e| e.to_string())?;
            for c in cats {
                let attrs = if c.attributes.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&c.attributes).map_err(|e| e.to_string())?
                };
                w.write_record([
                    &c.code,
                    &c.name,
                    &c.parent,
                    &c.description,
                    &c.keywords,
                    &attrs,
                ])
                .map_err(|e| e.to_string())?;
            }
            w.into_inner().map_err(|e| e.to_string())
        }
    }
}
