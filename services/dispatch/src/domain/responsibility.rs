//! The responsibility list (责任清单): category × region → lead unit and
//! co-handling units, each entry valid for a span of days. Pure: parsing and
//! writing the CSV an admin edits, finding conflicts, picking the entry for
//! a ticket, and listing gaps (a category with no unit in a region).

use chrono::NaiveDate;
use jiesu_common::{Text, tr};

/// One entry. `category` is a code or a group prefix; `region` a division
/// code prefix (the tenant's code covers the whole tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub category: String,
    pub region: String,
    pub lead: String,
    pub co: Vec<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub note: String,
}

impl Entry {
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|t| day <= t)
    }

    pub fn covers(&self, category: &str, region: &str, day: NaiveDate) -> bool {
        self.valid_on(day)
            && category.starts_with(&self.category)
            && region.starts_with(&self.region)
    }

    fn overlaps(&self, other: &Entry) -> bool {
        let end = |e: &Entry| e.valid_to.unwrap_or(NaiveDate::MAX);
        self.valid_from <= end(other) && other.valid_from <= end(self)
    }
}

/// The CSV header, in order.
pub const HEADER: [&str; 7] = [
    "category",
    "region_code",
    "lead_unit_id",
    "co_unit_ids",
    "valid_from",
    "valid_to",
    "note",
];

fn code_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn date(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()
}

/// Parses the CSV (with its header). Every problem is reported as
/// `line N: column: what`, not only the first. `tenant` bounds the regions.
pub fn parse_csv(text: &str, tenant: &str) -> Result<Vec<Entry>, Vec<Text>> {
    let (entries, errors) = read_csv(text, tenant);
    if errors.is_empty() {
        Ok(entries.into_iter().map(|(_, e)| e).collect())
    } else {
        Err(errors)
    }
}

/// The entries that could be read (with their line numbers) and every
/// problem of the file, so that checks against the directory can name their
/// problems in the same answer.
pub fn read_csv(text: &str, tenant: &str) -> (Vec<(usize, Entry)>, Vec<Text>) {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    match rd.headers() {
        Ok(h) if h.iter().eq(HEADER.iter().copied()) => {}
        Ok(h) => {
            let (want, got) = (HEADER.join(","), h.iter().collect::<Vec<_>>().join(","));
            let h = tr!(
                "第 1 行：表头必须是 `{want}`，而不是 `{got}`",
                "line 1: the header must be `{want}`, not `{got}`"
            );
            return (Vec::new(), vec![h]);
        }
        Err(e) => return (Vec::new(), vec![at_line(1, &csv_reason(&e))]),
    }
    let mut out = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(at_line(line, &csv_reason(&e)));
                continue;
            }
        };
        let col = |n: usize| rec.get(n).unwrap_or("").to_owned();
        let mut bad = |c: &str, m: Text| errors.push(at_line(line, &Text::about(c, &m)));
        let (category, region, lead) = (col(0), col(1), col(2));
        if !code_ok(&category, 32) {
            bad(
                "category",
                tr!(
                    "必须是分类编码或分类组前缀",
                    "must be a category code or group prefix"
                ),
            );
        }
        if !(region.len() >= 6 && region.len() <= 12 && region.bytes().all(|b| b.is_ascii_digit()))
        {
            bad(
                "region_code",
                tr!(
                    "必须是 6 到 12 位的行政区划代码",
                    "must be a division code of 6 to 12 digits"
                ),
            );
        } else if !region.starts_with(tenant) {
            bad(
                "region_code",
                tr!("必须在本辖区范围内", "must lie inside the tenant's region"),
            );
        }
        if !code_ok(&lead, 64) {
            bad("lead_unit_id", tr!("必须是单位编号", "must be a unit id"));
        }
        let co: Vec<String> = col(3)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if co.iter().any(|c| !code_ok(c, 64) || *c == lead) {
            bad(
                "co_unit_ids",
                tr!(
                    "必须是以 `;` 分隔的单位编号，且不能是主办单位",
                    "must be unit ids separated by `;`, other than the lead"
                ),
            );
        }
        let valid_from = date(&col(4));
        if valid_from.is_none() {
            bad(
                "valid_from",
                tr!("必须是 YYYY-MM-DD 格式的日期", "must be a date YYYY-MM-DD"),
            );
        }
        let valid_to = match col(5).as_str() {
            "" => None,
            raw => {
                let d = date(raw);
                if d.is_none() {
                    bad(
                        "valid_to",
                        tr!(
                            "必须是 YYYY-MM-DD 格式的日期或留空",
                            "must be a date YYYY-MM-DD or empty"
                        ),
                    );
                }
                d
            }
        };
        if let (Some(f), Some(t)) = (valid_from, valid_to)
            && t < f
        {
            bad("valid_to", tr!("早于 valid_from", "is before valid_from"));
        }
        let note = col(6);
        if note.chars().count() > 200 {
            bad("note", tr!("最多 200 个字符", "at most 200 characters"));
        }
        if let Some(valid_from) = valid_from {
            out.push((
                line,
                Entry {
                    category,
                    region,
                    lead,
                    co,
                    valid_from,
                    valid_to,
                    note,
                },
            ));
        }
    }
    errors.extend(conflicts(&out));
    (out, errors)
}

/// Entries naming a category the tenant does not have (`known` holds every
/// code of its tree, groups included).
pub fn unknown_categories(entries: &[(usize, Entry)], known: &[String]) -> Vec<Text> {
    entries
        .iter()
        .filter(|(_, e)| !known.contains(&e.category))
        .map(|(line, e)| {
            let c = &e.category;
            at_line(
                *line,
                &tr!(
                    "category：`{c}` 不是本辖区的分类",
                    "category: `{c}` is not a category of the tenant"
                ),
            )
        })
        .collect()
}

/// `第 N 行：…` / `line N: …`.
pub fn at_line(line: usize, what: &Text) -> Text {
    tr!("第 {line} 行：", "line {line}: ").then(what)
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

/// Two entries for the same category and region whose validity overlaps:
/// a ticket would have two lead units.
pub fn conflicts(entries: &[(usize, Entry)]) -> Vec<Text> {
    let mut out = Vec::new();
    for (i, (la, a)) in entries.iter().enumerate() {
        for (lb, b) in &entries[i + 1..] {
            if a.category == b.category && a.region == b.region && a.overlaps(b) {
                let (c, r) = (&a.category, &a.region);
                out.push(tr!(
                    "第 {la} 行和第 {lb} 行：在重叠的日期内都为 {c} 在 {r} 指定了主办单位",
                    "lines {la} and {lb}: both make a lead unit for {c} in {r} on overlapping days"
                ));
            }
        }
    }
    out
}

/// The entry for a ticket: valid on `day`, covering its category and
/// region, the most specific region first, then the most specific category.
pub fn pick<'a>(
    entries: &'a [Entry],
    category: &str,
    region: &str,
    day: NaiveDate,
) -> Option<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.covers(category, region, day))
        .max_by_key(|e| (e.region.len(), e.category.len()))
}

/// Category × region pairs no entry covers on `day`.
pub fn gaps(
    entries: &[Entry],
    categories: &[String],
    regions: &[String],
    day: NaiveDate,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in categories {
        for r in regions {
            if pick(entries, c, r, day).is_none() {
                out.push((c.clone(), r.clone()));
            }
        }
    }
    out
}

/// The list as CSV, header first, in the order given.
pub fn to_csv(entries: &[Entry]) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(|e| e.to_string())?;
    for e in entries {
        let from = e.valid_from.format("%Y-%m-%d").to_string();
        let to = e
            .valid_to
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        w.write_record([
            e.category.as_str(),
            e.region.as_str(),
            e.lead.as_str(),
            e.co.join(";").as_str(),
            from.as_str(),
            to.as_str(),
            e.note.as_str(),
        ])
        .map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "category,region_code,lead_unit_id,co_unit_ids,valid_from,valid_to,note\n\
        SH01,370202,sn-gafj,,2025-01-01,,噪声扰民全区由公安分局牵头\n\
        CG,370202,sn-cgj,,2025-01-01,,\n\
        CG02,370202006,sn-bdx,sn-cgj;sn-gafj,2025-01-01,2026-12-31,八大峡街道违停由街道牵头\n";

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn the_most_specific_valid_entry_routes_a_ticket() -> Result<(), Vec<Text>> {
        let list = parse_csv(CSV, "370202")?;
        let on = day(2026, 6, 1);
        let lead = |c: &str, r: &str, d| pick(&list, c, r, d).map(|e| e.lead.as_str());
        assert_eq!(lead("CG02", "370202006001", on), Some("sn-bdx"));
        assert_eq!(
            lead("CG02", "370202010", on),
            Some("sn-cgj"),
            "other streets: the group entry"
        );
        assert_eq!(
            lead("CG02", "370202006", day(2027, 1, 1)),
            Some("sn-cgj"),
            "expired street entry"
        );
        assert_eq!(lead("SC01", "370202006", on), None);
        let street = pick(&list, "CG02", "370202006", on).map(|e| e.co.clone());
        assert_eq!(
            street,
            Some(vec!["sn-cgj".to_owned(), "sn-gafj".to_owned()])
        );
        Ok(())
    }

    #[test]
    fn gaps_list_each_category_a_region_has_no_unit_for() -> Result<(), Vec<Text>> {
        let list = parse_csv(CSV, "370202")?;
        let cats = ["SH01", "CG02", "SC01"].map(String::from);
        let regions = ["370202006", "370202010"].map(String::from);
        let g = gaps(&list, &cats, &regions, day(2026, 6, 1));
        assert_eq!(
            g,
            vec![
                ("SC01".to_owned(), "370202006".to_owned()),
                ("SC01".to_owned(), "370202010".to_owned())
            ]
        );
        Ok(())
    }

    #[test]
    fn every_bad_line_and_every_conflict_is_reported() {
        let csv = "category,region_code,lead_unit_id,co_unit_ids,valid_from,valid_to,note\n\
            SH01,370202,sn-gafj,,2025-01-01,,\n\
            SH01,370202,sn-zjj,,2026-01-01,2026-12-31,\n\
            CG02,370203,sn-bdx,,2025-01-01,,\n\
            CG02,370202,sn-bdx,sn-bdx,2025-13-01,,\n";
        let errors = parse_csv(csv, "370202").err().unwrap_or_default();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].en.starts_with("line 4: region_code"),
            "{errors:?}"
        );
        assert!(
            errors[0].zh.starts_with("第 4 行：region_code："),
            "{errors:?}"
        );
        assert!(errors[1].en.starts_with("line 5: co_unit_ids"));
        assert!(errors[2].en.starts_with("line 5: valid_from"));
        assert!(errors[3].en.starts_with("lines 2 and 3"));
        assert!(errors[3].zh.starts_with("第 2 行和第 3 行"));
        let header = parse_csv("a,b\n", "370202").err().unwrap_or_default();
        assert!(header[0].en.contains("header") && header[0].zh.contains("表头"));
    }

    #[test]
    fn the_export_reads_back_as_the_same_list() -> Result<(), String> {
        let list = parse_csv(CSV, "370202").map_err(|e| Text::join(&e).en)?;
        let again = parse_csv(&to_csv(&list)?, "370202").map_err(|e| Text::join(&e).en)?;
        assert_eq!(list, again);
        Ok(())
    }
}
