//! Statement shapes the server refuses before DuckDB plans them.
//!
//! DuckDB's planning time grows with the square of the number of set
//! operations in a statement (`SELECT 1 UNION ALL SELECT 1 …`: 1,000 terms
//! plan in ~6 s, 20,000 in hours), and planning cannot be interrupted: a
//! statement timeout does not stop it. Such statements are counted here, on
//! the SQL text (outside string literals, quoted identifiers and comments),
//! and refused above a cap. Nesting depth is DuckDB's own check ("max
//! expression depth").

use crate::error::{QueryError, QueryResult};

/// `UNION` / `INTERSECT` / `EXCEPT` allowed in one statement by default
/// (plans in well under a second).
pub const DEFAULT_MAX_SET_OPERATIONS: usize = 256;

/// Refuse `sql` if it holds more than `max` set operations.
pub fn check(sql: &str, max: usize) -> QueryResult<()> {
    let n = set_operations(sql);
    if n > max {
        return Err(QueryError::TooComplex(format!(
            "the statement has {n} UNION/INTERSECT/EXCEPT operations, more than this server plans ({max}): \
             load the parts into a table (INSERT … SELECT per part, or one VALUES list) and query that"
        )));
    }
    Ok(())
}

/// How many `UNION`, `INTERSECT` and `EXCEPT` keywords `sql` holds outside
/// literals, quoted identifiers and comments.
pub fn set_operations(sql: &str) -> usize {
    let b = sql.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => i = skip_quoted(b, i),
            b'-' if b.get(i + 1) == Some(&b'-') => i = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p + 1),
            b'/' if b.get(i + 1) == Some(&b'*') => i = find(b, i + 2, b"*/").map_or(b.len(), |p| p + 2),
            b'$' => i = skip_dollar_quoted(b, i),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                    i += 1;
                }
                let word = &sql[start..i];
                if ["union", "intersect", "except"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    n
}

/// Past a `'…'` or `"…"` (a doubled quote stays inside).
fn skip_quoted(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Past a `$tag$…$tag$` string; a lone `$` (a parameter such as `$1`) is one byte.
fn skip_dollar_quoted(b: &[u8], start: usize) -> usize {
    let tag_end = b[start + 1..].iter().position(|&c| !(c.is_ascii_alphanumeric() || c == b'_')).map(|p| start + 1 + p);
    match tag_end {
        Some(end) if b[end] == b'$' && !b[start + 1..end].first().is_some_and(u8::is_ascii_digit) => {
            let tag = &b[start..=end];
            find(b, end + 1, tag).map_or(b.len(), |p| p + tag.len())
        }
        _ => start + 1,
    }
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_keywords_outside_literals_and_comments() {
        assert_eq!(set_operations("SELECT 1 UNION ALL SELECT 2 union select 3"), 2);
        assert_eq!(set_operations("SELECT 1 INTERSECT SELECT 1 EXCEPT SELECT 2"), 2);
        assert_eq!(set_operations("SELECT 'a UNION b', \"union\" FROM t -- union\n/* UNION */ WHERE x = $$UNION$$"), 0);
        assert_eq!(set_operations("SELECT 'it''s' UNION SELECT $tag$ UNION $tag$ UNION SELECT $1"), 2);
        assert_eq!(set_operations("SELECT reunion, union_id, unions FROM t"), 0);
        assert_eq!(set_operations("SELECT 'unterminated UNION"), 0);
        assert_eq!(set_operations("/* unterminated UNION"), 0);
    }

    #[test]
    fn caps_huge_set_operations_with_a_clear_error() {
        let huge = vec!["SELECT 1"; 20_000].join(" UNION ALL ");
        let e = check(&huge, DEFAULT_MAX_SET_OPERATIONS).unwrap_err().to_string();
        assert!(e.contains("19999 UNION/INTERSECT/EXCEPT") && e.contains("(256)"), "{e}");
        assert!(check(&vec!["SELECT 1"; 257].join(" UNION ALL "), DEFAULT_MAX_SET_OPERATIONS).is_ok());
        assert!(check(&vec!["SELECT 1"; 258].join(" UNION ALL "), DEFAULT_MAX_SET_OPERATIONS).is_err());
    }
}
