//! The 12-digit division tree as a CSV of `code,name`: each code's level
//! follows from its length (2 province, 4 city, 6 county, 9 street, 12
//! community) and its parent is the longest listed code that prefixes it.

use jiesu_common::{Text, tr};

/// One region with its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub level: &'static str,
    pub parent: Option<String>,
}

pub fn level(code: &str) -> Option<&'static str> {
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match code.len() {
        2 => "province",
        4 => "city",
        6 => "county",
        9 => "street",
        12 => "community",
        _ => return None,
    })
}

/// Reads `code,name` lines (header first). Every region lies in the
/// tenant's subtree, and every one below the tenant has its parent listed
/// (or is a direct child of the tenant). Every problem is named by line.
pub fn read_csv(text: &str, tenant: &str) -> Result<Vec<Region>, Vec<Text>> {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("code,name") {
        return Err(vec![tr!(
            "第 1 行：表头必须是 `code,name`",
            "line 1: the header must be `code,name`"
        )]);
    }
    let mut errors = Vec::new();
    let mut out: Vec<Region> = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let Some((code, name)) = line.split_once(',') else {
            errors.push(tr!(
                "第 {n} 行：需要 code 和 name 两列",
                "line {n}: two columns, code and name"
            ));
            continue;
        };
        let (code, name) = (code.trim(), name.trim());
        let Some(lvl) = level(code) else {
            errors.push(tr!(
                "第 {n} 行：代码 `{code}` 必须是 2、4、6、9 或 12 位数字",
                "line {n}: code `{code}` must be 2, 4, 6, 9 or 12 digits"
            ));
            continue;
        };
        if !code.starts_with(tenant) {
            errors.push(tr!(
                "第 {n} 行：`{code}` 不在本辖区 {tenant} 范围内",
                "line {n}: `{code}` is not in the tenant's region {tenant}"
            ));
            continue;
        }
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(tr!(
                "第 {n} 行：name 必须是 1 到 100 个字符",
                "line {n}: name must be 1 to 100 characters"
            ));
            continue;
        }
        if out.iter().any(|r| r.code == code) {
            errors.push(tr!(
                "第 {n} 行：`{code}` 重复出现",
                "line {n}: `{code}` appears twice"
            ));
            continue;
        }
        out.push(Region {
            code: code.to_owned(),
            name: name.to_owned(),
            level: lvl,
            parent: None,
        });
    }
    let codes: Vec<String> = out.iter().map(|r| r.code.clone()).collect();
    for r in &mut out {
        r.parent = codes
            .iter()
            .filter(|c| c.len() < r.code.len() && r.code.starts_with(c.as_str()))
            .max_by_key(|c| c.len())
            .cloned();
        let direct_child = [2usize, 4, 6, 9]
            .iter()
            .rev()
            .find(|l| **l < r.code.len())
            .is_some_and(|l| r.code.get(..*l) == Some(tenant));
        if r.parent.is_none() && r.code != tenant && !direct_child {
            let code = &r.code;
            errors.push(tr!(
                "`{code}`：其上级区划不在列表中",
                "`{code}`: its parent is not listed"
            ));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_read_with_levels_and_parents() {
        let csv = "code,name\n370202,市南区\n370202006,湛山街道\n370202006001,湛山社区\n";
        let r = read_csv(csv, "370202").unwrap_or_default();
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[1].level, r[1].parent.as_deref()),
            ("street", Some("370202"))
        );
        assert_eq!(
            (r[2].level, r[2].parent.as_deref()),
            ("community", Some("370202006"))
        );
    }

    #[test]
    fn bad_lines_and_orphans_are_named() {
        let csv =
            "code,name\n37020200,八位\n370203001,别区街道\n370202006001,孤儿社区\n370202006,\n";
        let e = read_csv(csv, "370202").err().unwrap_or_default();
        assert!(e[0].en.starts_with("line 2: code"), "{e:?}");
        assert!(
            e[1].en.starts_with("line 3:") && e[1].en.contains("not in the tenant"),
            "{e:?}"
        );
        assert!(
            e[1].zh.starts_with("第 3 行：") && e[1].zh.contains("不在本辖区"),
            "{e:?}"
        );
        assert!(e[2].en.starts_with("line 5: name"), "{e:?}");
        assert!(
            e[3].en.contains("370202006001") && e[3].en.contains("parent"),
            "{e:?}"
        );
        assert!(read_csv("a,b\n", "370202").is_err());
    }
}
