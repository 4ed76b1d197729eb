//! Masking for output and redaction of free text.

/// `13800138000` → `138****8000`; short numbers keep only their last two.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().filter(|c| !c.is_whitespace()).collect();
    let n = chars.len();
    if n >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if n > 2 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("{}{tail}", "*".repeat(n - 2))
    } else {
        "*".repeat(n)
    }
}

/// `370202199001011234` → `370202********1234`.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let n = chars.len();
    if n >= 10 {
        let head: String = chars[..6].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(n - 10))
    } else {
        "*".repeat(n)
    }
}

/// Keeps the area part of an address and hides the house: the text before
/// the first digit (house, building and room numbers start there), at most
/// half of it without digits, never more than 10 characters; then `****`.
pub fn mask_address(address: &str) -> String {
    let chars: Vec<char> = address.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let first_digit = chars.iter().position(|c| digit_value(*c).is_some());
    let keep = first_digit
        .unwrap_or(chars.len() / 2)
        .min(chars.len() / 2 + 4)
        .min(10);
    let head: String = chars[..keep].iter().collect();
    format!("{head}****")
}

/// `张三丰` → `张**`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count())),
        None => String::new(),
    }
}

fn digit_value(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
        _ => None,
    }
}

/// Characters people put inside phone and ID numbers.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '.' | '(' | ')' | '\u{3000}' | '－' | '—' | '（' | '）' | '．'
    )
}

/// Masks every run of 11 or more digits (phones, landlines with area code,
/// ID and bank numbers) in free text. Separators inside a run (spaces,
/// hyphens, dots, parentheses, their full-width forms), a trailing X of an ID
/// number and full-width digits are handled.
pub fn redact_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if digit_value(chars[i]).is_none() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // Extend the run over digits and single separators between digits.
        let start = i;
        let mut end = i;
        let mut digits = Vec::new();
        let mut group = 0;
        let mut j = i;
        while j < chars.len() {
            if let Some(d) = digit_value(chars[j]) {
                digits.push(d);
                group += 1;
                end = j + 1;
                j += 1;
            } else if is_separator(chars[j])
                // Phones are written 138-0013-8000 or 0532-8888 6666: only
                // short groups continue across a separator, so codes such
                // as 370202-20261122-00042 stay intact.
                && group <= 4
                && j + 1 < chars.len()
                && digit_value(chars[j + 1]).is_some()
            {
                group = 0;
                j += 1;
            } else {
                break;
            }
        }
        if end < chars.len() && matches!(chars[end], 'X' | 'x') && digits.len() == 17 {
            digits.push('X');
            end += 1;
        }
        if digits.len() >= 11 {
            let n = digits.len();
            let head: String = digits[..3].iter().collect();
            let tail: String = digits[n - 4..].iter().collect();
            out.push_str(&head);
            out.push_str(&"*".repeat(n - 7));
            out.push_str(&tail);
        } else {
            out.extend(&chars[start..end]);
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("0532-88886666"), "053****6666");
        assert_eq!(mask_id_number("370202199001011234"), "370202********1234");
        assert_eq!(
            mask_address("青岛市市南区香港中路街道燕儿岛路10号3单元"),
            "青岛市市南区香港中路****"
        );
        assert_eq!(mask_address("燕儿岛路10号3单元501室"), "燕儿岛路****");
        assert_eq!(mask_address("燕儿岛路10号"), "燕儿岛路****");
        assert_eq!(mask_address("10号楼"), "****");
        assert_eq!(mask_address("某某小区东门"), "某某小****");
        assert_eq!(mask_name("张三丰"), "张**");
    }

    #[test]
    fn redacts_numbers_in_text() {
        let cases = [
            ("请回电13800138000谢谢", "请回电138****8000谢谢"),
            ("电话 138 0013 8000。", "电话 138****8000。"),
            ("身份证370202199001011234", "身份证370***********1234"),
            ("身份证37020219900101123X号", "身份证370***********123X号"),
            ("手机１３８００１３８０００", "手机138****8000"),
            ("座机0532-88886666", "座机053*****6666"),
            ("电话138\u{3000}0013\u{3000}8000", "电话138****8000"),
            ("电话(0532)88886666", "电话(053*****6666"),
            ("电话138.0013.8000", "电话138****8000"),
            ("经纬度36.06,120.38", "经纬度36.06,120.38"),
            ("3号楼2单元501室，噪音到23点", "3号楼2单元501室，噪音到23点"),
            ("工单370202-20261122-00042", "工单370202-20261122-00042"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_text(input), want, "{input}");
        }
    }
}
