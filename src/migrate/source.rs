//! Reads a migrations folder (Drizzle journal or numbered SQL files) into migrations with their
//! checksums and statements, exactly as Drizzle's migrator would see them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{sql, MigrateError, Problem};
use crate::text::{self, LineIndex};

/// Drizzle's statement separator; chunks are split on it and nothing else.
pub const BREAKPOINT: &str = "--> statement-breakpoint";
/// First-line marker for migrations that must run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- db-init: no-transaction";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Drizzle,
    Numbered,
}

#[derive(Debug, Clone)]
pub struct Migration {
    /// Drizzle: the journal's `when` (what `created_at` stores). Numbered: the file's version.
    pub version: i64,
    /// Drizzle: the tag. Numbered: the part of the file name after `<version>_`.
    pub name: String,
    /// The file name, relative to the migrations folder, for messages.
    pub file: String,
    /// The file as Drizzle reads it: invalid UTF-8 replaced by U+FFFD, BOM and CRLF kept.
    pub text: String,
    /// SHA-256 hex of `text`: Drizzle's `hash`, db-init's `checksum`.
    pub checksum: String,
    pub no_transaction: bool,
    /// Drizzle: breakpoint chunks. Numbered: one per top-level statement.
    pub statements: Vec<Range<usize>>,
    lines: LineIndex,
}

impl Migration {
    fn new(version: i64, name: String, file: String, bytes: &[u8], layout: Layout) -> Migration {
        let (text, _) = text::decode(bytes);
        let checksum = text::sha256_hex(&text);
        let no_transaction = text
            .trim_start_matches('\u{feff}')
            .lines()
            .next()
            .is_some_and(|first| first.trim().eq_ignore_ascii_case(NO_TRANSACTION_MARKER));
        let statements = match layout {
            Layout::Drizzle => chunks(&text),
            Layout::Numbered => sql::statements(&text)
                .into_iter()
                .map(|s| s.range)
                .collect(),
        };
        Migration {
            version,
            name,
            file,
            lines: LineIndex::new(&text),
            text,
            checksum,
            no_transaction,
            statements,
        }
    }

    /// The SQL of statement `i` as it is sent: a leading BOM is not sent to the server
    /// (Drizzle sends it and fails with a syntax error; the checksum still covers it).
    pub fn statement_sql(&self, i: usize) -> (&str, usize) {
        let Some(range) = self.statements.get(i) else {
            return ("", self.text.len());
        };
        let sql = self.text.get(range.clone()).unwrap_or("");
        match sql.strip_prefix('\u{feff}') {
            Some(rest) => (rest, range.start + 3),
            None => (sql, range.start),
        }
    }

    /// 1-based line and column (in characters) of a byte offset in the file.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.lines.line_col(&self.text, offset)
    }
}

#[derive(Debug)]
pub struct Source {
    pub layout: Layout,
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
}

/// Loads the folder. Structural problems (missing files, files the journal lacks, duplicate
/// versions) come back together as one validation error, before any connection is made.
pub fn load(dir: &Path) -> Result<Source, MigrateError> {
    let io = |e: std::io::Error, path: &Path| MigrateError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let meta = std::fs::metadata(dir).map_err(|e| io(e, dir))?;
    if !meta.is_dir() {
        return Err(io(std::io::Error::other("not a directory"), dir));
    }
    let journal = dir.join("meta").join("_journal.json");
    let (layout, migrations, problems) = if journal.exists() {
        let (m, p) = load_drizzle(dir, &journal)?;
        (Layout::Drizzle, m, p)
    } else {
        let (m, p) = load_numbered(dir)?;
        (Layout::Numbered, m, p)
    };
    if !problems.is_empty() {
        return Err(MigrateError::Validation { problems });
    }
    Ok(Source {
        layout,
        dir: dir.to_path_buf(),
        migrations,
    })
}

#[derive(serde::Deserialize)]
struct Journal {
    entries: Vec<JournalEntry>,
}

#[derive(serde::Deserialize)]
struct JournalEntry {
    tag: String,
    when: i64,
}

fn load_drizzle(
    dir: &Path,
    journal_path: &Path,
) -> Result<(Vec<Migration>, Vec<Problem>), MigrateError> {
    let text = std::fs::read_to_string(journal_path).map_err(|source| MigrateError::Io {
        path: journal_path.to_path_buf(),
        source,
    })?;
    let journal: Journal = serde_json::from_str(&text).map_err(|e| MigrateError::Validation {
        problems: vec![Problem::BadJournal {
            file: journal_path.display().to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }],
    })?;
    let mut problems = Vec::new();
    let mut migrations = Vec::new();
    for (i, entry) in journal.entries.iter().enumerate() {
        let earlier = &journal.entries[..i];
        if earlier
            .iter()
            .any(|e| e.tag == entry.tag || e.when == entry.when)
        {
            problems.push(Problem::Duplicate {
                version: entry.when.to_string(),
                file: format!("{}.sql", entry.tag),
            });
            continue;
        }
        let file = format!("{}.sql", entry.tag);
        match std::fs::read(dir.join(&file)) {
            Ok(bytes) => migrations.push(Migration::new(
                entry.when,
                entry.tag.clone(),
                file,
                &bytes,
                Layout::Drizzle,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(Problem::NoFileForEntry {
                    tag: entry.tag.clone(),
                    file,
                })
            }
            Err(source) => {
                return Err(MigrateError::Io {
                    path: dir.join(file),
                    source,
                })
            }
        }
    }
    for name in sorted_entries(dir)? {
        if name.ends_with(".sql")
            && !journal
                .entries
                .iter()
                .any(|e| format!("{}.sql", e.tag) == name)
        {
            problems.push(Problem::NotInJournal { file: name });
        }
    }
    Ok((migrations, problems))
}

fn load_numbered(dir: &Path) -> Result<(Vec<Migration>, Vec<Problem>), MigrateError> {
    let mut problems = Vec::new();
    let mut migrations: Vec<Migration> = Vec::new();
    for name in sorted_entries(dir)? {
        if name.starts_with('.') || name.ends_with(".down.sql") {
            continue;
        }
        let Some((version, rest)) = parse_numbered(&name) else {
            problems.push(Problem::UnexpectedFile { file: name });
            continue;
        };
        if let Some(other) = migrations.iter().find(|m| m.version == version) {
            problems.push(Problem::Duplicate {
                version: version.to_string(),
                file: format!("{} and {name}", other.file),
            });
            continue;
        }
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| MigrateError::Io { path, source })?;
        migrations.push(Migration::new(
            version,
            rest.to_string(),
            name,
            &bytes,
            Layout::Numbered,
        ));
    }
    migrations.sort_by_key(|m| m.version);
    Ok((migrations, problems))
}

/// `0001_init.sql` -> (1, "init"). The version is all digits and fits an i64.
pub fn parse_numbered(file: &str) -> Option<(i64, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name))
}

fn sorted_entries(dir: &Path) -> Result<Vec<String>, MigrateError> {
    let read = std::fs::read_dir(dir).map_err(|source| MigrateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|source| MigrateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// `text.split("--> statement-breakpoint")` as byte ranges: no trimming, empty chunks kept.
fn chunks(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(BREAKPOINT) {
        out.push(start..at);
        start = at + BREAKPOINT.len();
    }
    out.push(start..text.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_like_javascript() {
        let t = "A;--> statement-breakpoint\nB;--> statement-breakpoint";
        let parts: Vec<&str> = chunks(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(parts, vec!["A;", "\nB;", ""]);
    }

    #[test]
    fn hash_of_invalid_utf8_uses_replacement_characters() {
        let m = Migration::new(
            1,
            "x".into(),
            "x.sql".into(),
            b"SELECT '\xff';",
            Layout::Drizzle,
        );
        assert_eq!(m.text, "SELECT '\u{fffd}';");
        assert_eq!(m.checksum, text::sha256_hex("SELECT '\u{fffd}';"));
    }

    #[test]
    fn marker_on_first_line_even_after_a_bom() {
        let m = Migration::new(
            1,
            "x".into(),
            "x.sql".into(),
            "\u{feff}-- db-init: no-transaction\nVACUUM;".as_bytes(),
            Layout::Numbered,
        );
        assert!(m.no_transaction);
        let m = Migration::new(
            1,
            "x".into(),
            "x.sql".into(),
            b"VACUUM;\n-- db-init: no-transaction\n",
            Layout::Numbered,
        );
        assert!(!m.no_transaction);
    }

    #[test]
    fn bom_is_not_sent_and_positions_count_characters() {
        let m = Migration::new(
            1,
            "x".into(),
            "x.sql".into(),
            "\u{feff}SELECT 1;\nSELECT 'é', x;".as_bytes(),
            Layout::Drizzle,
        );
        let (sql, offset) = m.statement_sql(0);
        assert!(sql.starts_with("SELECT 1"));
        assert_eq!(offset, 3);
        let x = m.text.find(", x").map(|n| n + 2).unwrap_or(0);
        assert_eq!(m.line_col(x), (2, 13));
    }

    #[test]
    fn numbered_names() {
        assert_eq!(parse_numbered("0001_init.sql"), Some((1, "init")));
        assert_eq!(
            parse_numbered("20250101120000_add_users.sql"),
            Some((20250101120000, "add_users"))
        );
        assert_eq!(parse_numbered("init.sql"), None);
        assert_eq!(parse_numbered("0001.sql"), None);
        assert_eq!(parse_numbered("01a_x.sql"), None);
    }
}

#[cfg(test)]
pub mod testing {
    use super::*;

    pub fn migration(version: i64, file: &str, sql: &str, layout: Layout) -> Migration {
        Migration::new(
            version,
            file.trim_end_matches(".sql").to_string(),
            file.to_string(),
            sql.as_bytes(),
            layout,
        )
    }
}
