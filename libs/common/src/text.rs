//! Words a person reads: every message a caller may see exists in Chinese
//! (the default, for the clerks and citizens who read it) and in English
//! (for callers that send `Accept-Language: en`).
//!
//! A message is written once where the error arises, both languages side
//! by side: `tr!("必须是 UUID", "must be a UUID")`. There is deliberately no
//! conversion from a plain string, so an English-only message does not
//! compile. Machine codes and field names are never translated. Like every
//! message, a [`Text`] never carries personal data.

/// A message in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    pub zh: String,
    pub en: String,
}

/// Which language a caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The language of an `Accept-Language` header: English when the
    /// caller prefers English (`en`, `en-US`, ...) to Chinese, Chinese
    /// otherwise (also when the header is absent or names neither).
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.unwrap_or_default().split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("en") => Lang::En,
                Some("zh") => Lang::Zh,
                _ => continue,
            };
            // The first of equal preference wins.
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang).unwrap_or_default()
    }

    /// The `Content-Language` of an answer in this language.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

impl Text {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// The message in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }

    /// The message about one field, prefixed by its path as callers read
    /// it: `citizen.phone：必填` / `citizen.phone: is required`.
    pub fn about(field: &str, message: &Text) -> Text {
        Text {
            zh: format!("{field}：{}", message.zh),
            en: format!("{field}: {}", message.en),
        }
    }

    /// Several messages as one, separated by `；` / `; `.
    pub fn join<'a>(parts: impl IntoIterator<Item = &'a Text>) -> Text {
        let mut out = Text::default();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                out.zh.push('；');
                out.en.push_str("; ");
            }
            out.zh.push_str(&p.zh);
            out.en.push_str(&p.en);
        }
        out
    }

    /// This message followed by `more` (written with its own punctuation).
    pub fn then(mut self, more: &Text) -> Text {
        self.zh.push_str(&more.zh);
        self.en.push_str(&more.en);
        self
    }
}

/// Refusals many fields share, worded the same everywhere.
pub mod says {
    use super::Text;

    pub fn required() -> Text {
        crate::tr!("必填", "is required")
    }

    pub fn at_most_chars(max: usize) -> Text {
        crate::tr!("最多 {max} 个字符", "must be at most {max} characters")
    }

    pub fn no_control_chars() -> Text {
        crate::tr!("不能包含控制字符", "must not contain control characters")
    }

    /// `names` as the caller may send them, e.g. `open, closed`.
    pub fn one_of(names: &str) -> Text {
        crate::tr!("必须是以下之一：{names}", "must be one of: {names}")
    }

    pub fn not_after(other: &str) -> Text {
        crate::tr!("不能晚于 {other}", "must not be after {other}")
    }
}

/// A [`Text`] from two format strings (Chinese first) that may name the
/// same variables: `tr!("最多 {max} 个字符", "must be at most {max} characters")`.
/// Extra arguments after the two strings go to both and must be used by both.
#[macro_export]
macro_rules! tr {
    ($zh:literal, $en:literal $(,)?) => {
        $crate::text::Text::new(::std::format!($zh), ::std::format!($en))
    };
    ($zh:literal, $en:literal, $($arg:tt)+) => {
        $crate::text::Text::new(::std::format!($zh, $($arg)+), ::std::format!($en, $($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_english_only_when_preferred() {
        let cases = [
            (None, Lang::Zh),
            (Some(""), Lang::Zh),
            (Some("en"), Lang::En),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("EN-gb"), Lang::En),
            (Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh),
            (Some("en;q=0.5, zh;q=0.8"), Lang::Zh),
            (Some("fr, en;q=0.5"), Lang::En),
            (Some("fr-FR"), Lang::Zh),
            (Some("*"), Lang::Zh),
            (Some("en;q=0"), Lang::Zh),
            (Some("english"), Lang::Zh),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
        }
    }

    #[test]
    fn tr_formats_both_languages() {
        let max = 50;
        let t = crate::tr!("最多{max}个字符", "must be at most {max} characters");
        assert_eq!(t.zh, "最多50个字符");
        assert_eq!(t.en, "must be at most 50 characters");
        let t = crate::tr!("第{}行", "line {}", 3);
        assert_eq!((t.get(Lang::Zh), t.get(Lang::En)), ("第3行", "line 3"));
        let about = Text::about("citizen.phone", &crate::tr!("必填", "is required"));
        assert_eq!(about.zh, "citizen.phone：必填");
        assert_eq!(about.en, "citizen.phone: is required");
        let both = Text::join(&[Text::new("甲", "a"), Text::new("乙", "b")]);
        assert_eq!((both.zh.as_str(), both.en.as_str()), ("甲；乙", "a; b"));
    }
}
