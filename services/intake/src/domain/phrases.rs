//! The phrases that recur in a set of requests: character n-grams of the
//! Chinese text (2 to 6 characters, no punctuation), counted once per
//! request, without filler, and without a shorter phrase that a longer one
//! explains.

use std::collections::{BTreeMap, BTreeSet};

/// Words every request uses: phrases holding one say nothing of a topic.
const FILLER: [&str; 30] = [
    "反映", "市民", "来电", "诉求", "问题", "希望", "要求", "处理", "解决", "相关", "部门", "目前",
    "现在", "已经", "没有", "一个", "这个", "我们", "他们", "自己", "情况", "表示", "进行", "请求",
    "协调", "帮助", "尽快", "非常", "严重", "影响",
];

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// The distinct phrases of one text.
fn grams(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut run: Vec<char> = Vec::new();
    let mut flush = |run: &mut Vec<char>| {
        for n in 2..=6 {
            for w in run.windows(n) {
                let g: String = w.iter().collect();
                if !FILLER.iter().any(|f| g.contains(f)) {
                    out.insert(g);
                }
            }
        }
        run.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            run.push(c);
        } else {
            flush(&mut run);
        }
    }
    flush(&mut run);
    out
}

/// Joins the longest grams that overlap by all but one character and
/// occur as often (they are one longer phrase, cut by the gram length).
fn chain(kept: &mut Vec<(String, i64)>) {
    const OVERLAP: usize = 5;
    let mut long: Vec<(Vec<char>, i64)> = kept
        .iter()
        .filter(|(g, _)| g.chars().count() == OVERLAP + 1)
        .map(|(g, n)| (g.chars().collect(), *n))
        .collect();
    // Each pass joins one pair; a phrase of L characters takes L - 6.
    for _ in 0..10_000 {
        let mut joined = None;
        'find: for (i, (a, n)) in long.iter().enumerate() {
            for (j, (b, m)) in long.iter().enumerate() {
                if i != j && n == m && a[a.len() - OVERLAP..] == b[..OVERLAP] {
                    let mut c = a.clone();
                    c.extend_from_slice(&b[OVERLAP..]);
                    joined = Some((i, j, c, *n));
                    break 'find;
                }
            }
        }
        let Some((i, j, c, n)) = joined else {
            break;
        };
        let (hi, lo) = (i.max(j), i.min(j));
        long.remove(hi);
        long.remove(lo);
        long.push((c, n));
    }
    for (c, n) in long {
        let g: String = c.into_iter().collect();
        if !kept.iter().any(|(k, _)| *k == g) {
            kept.push((g, n));
        }
    }
}

/// The `limit` phrases found in the most texts (at least 3, and at least
/// 5% of them), longest first among equals.
pub fn top_phrases<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> (Vec<(String, i64)>, i64) {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut examined = 0i64;
    for t in texts {
        examined += 1;
        for g in grams(t) {
            *counts.entry(g).or_default() += 1;
        }
    }
    let floor = 3.max((examined as f64 * 0.05).ceil() as i64);
    let mut kept: Vec<(String, i64)> = counts.into_iter().filter(|(_, n)| *n >= floor).collect();
    chain(&mut kept);
    // Longest first, so a shorter phrase meets the longer ones before it.
    kept.sort_by(|a, b| {
        b.0.chars()
            .count()
            .cmp(&a.0.chars().count())
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    let mut out: Vec<(String, i64)> = Vec::new();
    for (g, n) in kept {
        // A phrase inside a longer kept one that occurs nearly as often
        // adds nothing.
        let explained = out
            .iter()
            .any(|(long, m)| long.contains(&g) && (*m as f64) >= 0.8 * n as f64);
        if !explained {
            out.push((g, n));
        }
    }
    out.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.0.chars().count().cmp(&a.0.chars().count()))
            .then(a.0.cmp(&b.0))
    });
    out.truncate(limit);
    (out, examined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heating_complaints_say_what_they_are_about() {
        let texts = [
            "市民反映小区暖气不热，室温只有十二度",
            "暖气不热，家里老人受不了，希望尽快处理",
            "我家暖气不热已经三天了",
            "楼道灯坏了",
            "小区暖气不热，物业不管",
        ];
        let (top, examined) = top_phrases(texts, 5);
        assert_eq!(examined, 5);
        assert_eq!(top.first(), Some(&("暖气不热".to_owned(), 4)));
        // Its parts are explained by it; filler never shows.
        assert!(
            !top.iter().any(|(g, _)| g == "暖气" || g == "不热"),
            "{top:?}"
        );
        assert!(!top.iter().any(|(g, _)| g.contains("反映")), "{top:?}");
        // Twice is not recurring.
        assert!(!top.iter().any(|(g, _)| g == "小区暖气不热"), "{top:?}");
    }

    #[test]
    fn one_long_sentence_said_again_and_again_is_one_phrase() {
        let texts = ["小区门口违章停车堵住消防通道，晚上"; 6];
        let (top, _) = top_phrases(texts, 3);
        let long = "小区门口违章停车堵住消防通道";
        assert_eq!(top[0], (long.to_owned(), 6), "{top:?}");
        // No piece of it on its own; the words after the comma are another.
        assert!(
            !top.iter()
                .any(|(g, _)| g != long && long.contains(g.as_str())),
            "{top:?}"
        );
        assert!(top.iter().any(|(g, _)| g == "晚上"), "{top:?}");
    }
}
