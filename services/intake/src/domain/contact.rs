//! How a caller can be reached and named: a mainland phone number and a
//! resident ID number, normalised or refused.

/// A mainland resident ID number (GB 11643-1999): 17 digits and a check
/// character. Returns it upper-cased, or `None` when the check fails.
pub fn normalize_id_number(raw: &str) -> Option<String> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let id = raw.trim().to_ascii_uppercase();
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    (CHECK[(sum % 11) as usize] == b[17]).then_some(id)
}

/// `138 0013 8000` → `13800138000`; `0532 88886666` → `0532-88886666`.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let b = digits.as_bytes();
    if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
        return Some(digits);
    }
    if b.first() == Some(&b'0') && (10..=12).contains(&b.len()) {
        // Area codes: 010, 02x are 3 digits; the rest 4.
        let area = if b[1] == b'1' || b[1] == b'2' { 3 } else { 4 };
        let local = &digits[area..];
        if (7..=8).contains(&local.len()) {
            return Some(format!("{}-{local}", &digits[..area]));
        }
    }
    None
}
