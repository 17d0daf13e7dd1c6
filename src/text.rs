//! File text as migrations and seeds see it: decoded as Drizzle decodes it, hashed, and
//! positions turned into line and column.

use sha2::{Digest, Sha256};

/// A file's text as Drizzle reads it (`readFileSync().toString()`): invalid UTF-8 becomes
/// U+FFFD, a BOM and CRLF are kept. Also where the first invalid byte was, if any.
pub fn decode(bytes: &[u8]) -> (String, Option<usize>) {
    decode_owned(bytes.to_vec())
}

/// [`decode`] taking the bytes, so valid UTF-8 (the common case) costs no copy: a migration
/// of any size is held once.
pub fn decode_owned(bytes: Vec<u8>) -> (String, Option<usize>) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
        }
    }
}

/// SHA-256 of the text, lower-case hex: Drizzle's `hash`.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// 1-based line and column (in characters) of a byte offset in `text`. Scans from the start;
/// for many lookups in one file use [`LineIndex`].
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(text, offset)
}

/// Where each line starts, so that many positions in one file cost a binary search each
/// instead of a scan of the file each.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = text.get(start..offset).map_or(0, |s| s.chars().count());
        (line, column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let t = "ab\ncé x\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        let x = t.find('x').unwrap_or(0);
        assert_eq!(line_col(t, x), (2, 4));
        assert_eq!(line_col(t, t.len()), (3, 1));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_located() {
        let (text, at) = decode(b"SELECT '\xff';");
        assert_eq!(text, "SELECT '\u{fffd}';");
        assert_eq!(at, Some(8));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
