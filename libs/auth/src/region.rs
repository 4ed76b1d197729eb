//! Region codes: the 12-digit statistical division codes (2 province, 2 city,
//! 2 county, 3 township/street, 3 village/community), written in full or
//! shortened to their level (`370202` for a county). A region's ancestors are
//! its prefixes, so "scope covers region" is a prefix test on the significant
//! digits.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a region code (2, 4, 6, 9 or 12 digits)")]
pub struct RegionError(pub String);

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Region {
    code: String,
    significant: usize,
}

const LEVELS: [usize; 5] = [2, 4, 6, 9, 12];

impl Region {
    pub fn parse(code: &str) -> Result<Self, RegionError> {
        if !LEVELS.contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegionError(code.chars().take(16).collect()));
        }
        Ok(Self {
            code: code.to_owned(),
            significant: significant_len(code),
        })
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// The digits that identify this region; every descendant's code starts
    /// with them. Empty for the whole country (`00`).
    pub fn prefix(&self) -> &str {
        &self.code[..self.significant]
    }

    /// True when `code` is this region or lies below it.
    pub fn covers(&self, code: &str) -> bool {
        match Region::parse(code) {
            Ok(other) => other.prefix().starts_with(self.prefix()),
            Err(_) => false,
        }
    }

    /// True when `other` lies inside this region's subtree.
    pub fn contains(&self, other: &Region) -> bool {
        other.prefix().starts_with(self.prefix())
    }
}

fn significant_len(code: &str) -> usize {
    let mut len = code.len();
    // Strip whole trailing zero groups, level by level.
    for (i, &lvl) in LEVELS.iter().enumerate().rev() {
        if lvl > len {
            continue;
        }
        let start = if i == 0 { 0 } else { LEVELS[i - 1] };
        if lvl == len && code[start..lvl].bytes().all(|b| b == b'0') {
            len = start;
        }
    }
    len
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.code)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_by_level() {
        let cases = [
            ("37", "37"),
            ("370000", "37"),
            ("370200", "3702"),
            ("370202", "370202"),
            ("370202001", "370202001"),
            ("370202001000", "370202001"),
            ("370202000000", "370202"),
            ("370202001002", "370202001002"),
            ("000000", ""),
        ];
        for (code, prefix) in cases {
            assert_eq!(Region::parse(code).unwrap().prefix(), prefix, "{code}");
        }
    }

    #[test]
    fn coverage_follows_the_tree() {
        let city = Region::parse("370200").unwrap();
        let shinan = Region::parse("370202").unwrap();
        assert!(city.covers("370202"));
        assert!(city.covers("370203001"));
        assert!(shinan.covers("370202001002"));
        assert!(!shinan.covers("370203"));
        assert!(!shinan.covers("370200"));
        assert!(!Region::parse("370203").unwrap().covers("370202"));
        assert!(Region::parse("00").unwrap().covers("440305"));
    }

    #[test]
    fn rejects_non_codes() {
        for bad in [
            "",
            "370",
            "37020",
            "37020a",
            "3702020010011",
            "３７０２０２",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }
}
