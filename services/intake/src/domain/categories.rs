//! Importing and exporting a tenant's category tree (JSON or CSV), and the
//! rules a tree must follow: unique codes, known parents, no cycles, at most
//! three levels, valid attribute definitions.

use std::collections::{HashMap, HashSet};

use super::{FieldError, attributes::check_definitions, bad};
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
                    jiesu_runtime::json::JsonError::Data { field, message } => {
                        bad("data", format!("entry {field}: {message}"))
                    }
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
fn parse_csv(data: &[u8]) -> Result<(Vec<CategorySeed>, Vec<String>), FieldError> {
    let text = std::str::from_utf8(data).map_err(|_| bad("data", "is not valid UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad("data", format!("row 1: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let columns = CSV_HEADER.join(",");
    let mut wrong = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if !CSV_HEADER.contains(&h.as_str()) {
            wrong.push(format!("unknown column `{h}`"));
        } else if header[..i].contains(h) {
            wrong.push(format!("column `{h}` appears twice"));
        }
    }
    for needed in ["code", "name", "parent"] {
        if !header.iter().any(|h| h == needed) {
            wrong.push(format!("column `{needed}` is missing"));
        }
    }
    if !wrong.is_empty() {
        return Err(bad(
            "data",
            format!(
                "row 1, the header: {} (the columns are {columns})",
                wrong.join("; ")
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
                problems.push(format!("row {row}: {e}"));
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_owned();
        let attributes = match get(attrs).as_str() {
            "" => Vec::new(),
            json => match serde_json::from_str(json) {
                Ok(a) => a,
                Err(_) => {
                    problems.push(format!(
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

/// One answer naming every problem (up to ten, then how many more).
fn refuse(problems: Vec<String>) -> Result<(), FieldError> {
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len().saturating_sub(MAX_LISTED);
    let mut msg = problems
        .into_iter()
        .take(MAX_LISTED)
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        msg.push_str(&format!("; and {more} more"));
    }
    Err(bad("data", msg))
}

fn tree_problems(cats: &[CategorySeed]) -> Vec<String> {
    let mut problems = Vec::new();
    if cats.is_empty() {
        return vec!["holds no categories".into()];
    }
    if cats.len() > MAX_CATEGORIES {
        return vec![format!("holds more than {MAX_CATEGORIES} categories")];
    }
    let mut seen = HashSet::new();
    for (i, c) in cats.iter().enumerate() {
        let at = format!(
            "entry {} ({})",
            i + 1,
            c.code.chars().take(32).collect::<String>()
        );
        if !is_code(&c.code) {
            problems.push(format!("{at}: code must be 1 to 32 of A-Z a-z 0-9 _ - ."));
        }
        if !seen.insert(c.code.as_str()) {
            problems.push(format!("{at}: code appears twice"));
        }
        let name = c.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            problems.push(format!(
                "{at}: name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            ));
        }
        if c.description.chars().count() > 500 || c.keywords.chars().count() > 500 {
            problems.push(format!(
                "{at}: description and keywords are at most 500 characters each"
            ));
        }
        if let Err(e) = check_definitions(&c.attributes) {
            problems.push(format!("{at}: {e}"));
        }
    }
    let by_code: HashMap<&str, &CategorySeed> = cats.iter().map(|c| (c.code.as_str(), c)).collect();
    for c in cats {
        if c.parent.is_empty() {
            continue;
        }
        if !by_code.contains_key(c.parent.as_str()) {
            problems.push(format!(
                "{}: parent {} is not in the import",
                c.code, c.parent
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
                problems.push(format!(
                    "{}: deeper than {MAX_LEVELS} levels (or a cycle)",
                    c.code
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
