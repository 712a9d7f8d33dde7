//! Numbers read the way the backend's Ruby code reads them.

/// Ruby's `String#to_i` (base 10), saturating at the `i64` range.
pub(crate) fn ruby_to_i(s: &str) -> i64 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    let mut prev_underscore = false;
    for (i, c) in digits.char_indices() {
        match c {
            '0'..='9' => {
                value = value
                    .saturating_mul(10)
                    .saturating_add(i64::from(c as u8 - b'0'));
                prev_underscore = false;
            }
            '_' if i > 0 && !prev_underscore => prev_underscore = true,
            _ => break,
        }
    }
    if neg { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_to_i_examples() {
        assert_eq!(ruby_to_i("  42abc"), 42);
        assert_eq!(ruby_to_i("#5"), 0);
        assert_eq!(ruby_to_i("-3"), -3);
    }
}
