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

/// A file's bytes. A small file is read without asking for its size first (a pod start reads
/// every migration, and on a folder of 10,000 small files a `statx` each is a fifth of the
/// calls); a large one is read into a buffer of its exact size, so it is held once.
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut chunk = [0u8; 16 * 1024];
    let n = loop {
        match file.read(&mut chunk) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let first = chunk.get(..n).unwrap_or_default();
    if n < chunk.len() {
        // Regular files fill the buffer unless they end: the next read confirms the end.
        let mut bytes = first.to_vec();
        loop {
            match file.read(&mut chunk) {
                Ok(0) => return Ok(bytes),
                Ok(m) => bytes.extend_from_slice(chunk.get(..m).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    let size = file.metadata().map_or(0, |m| m.len() as usize);
    let mut bytes = Vec::with_capacity(size.max(n) + 1);
    bytes.extend_from_slice(first);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
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

/// A multi-line reason under a list item: every line kept, the later ones indented to line up.
pub fn indented(reason: &str) -> String {
    reason
        .trim_end()
        .lines()
        .collect::<Vec<_>>()
        .join("\n      ")
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
    fn files_small_and_large_are_read_whole() {
        let dir = std::env::temp_dir().join(format!("db-init-read-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for size in [0, 10, 16 * 1024, 16 * 1024 + 1, 100_000] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let path = dir.join(format!("f{size}"));
            let _ = std::fs::write(&path, &data);
            assert_eq!(read_file(&path).ok(), Some(data), "size {size}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_located() {
        let (text, at) = decode(b"SELECT '\xff';");
        assert_eq!(text, "SELECT '\u{fffd}';");
        assert_eq!(at, Some(8));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
