//! Just enough of PostgreSQL's lexical rules to find statement boundaries and leading keywords
//! outside comments, quoted strings, quoted identifiers and dollar-quoted bodies.

use std::ops::Range;

/// One top-level statement: its byte range (including the closing `;` when present) and its
/// keywords (upper-cased bare words outside quotes and comments, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub range: Range<usize>,
    pub words: Vec<String>,
}

/// Splits `sql` on top-level semicolons. Pieces holding only white space and comments are
/// dropped. `BEGIN ATOMIC ... END` bodies (SQL-standard function bodies) are kept whole.
pub fn statements(sql: &str) -> Vec<Stmt> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut words: Vec<String> = Vec::new();
    let mut atomic_depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            b'\'' => {
                // E'...' strings honour backslash escapes; the E was already read as a word.
                let escapes = i > 0
                    && matches!(b[i - 1], b'E' | b'e')
                    && words.last().is_some_and(|w| w == "E");
                if escapes {
                    words.pop();
                }
                i = skip_quoted(b, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'$' => match dollar_tag(sql, i) {
                Some(tag) => {
                    let body_start = i + tag.len();
                    i = sql[body_start..]
                        .find(tag)
                        .map_or(b.len(), |n| body_start + n + tag.len());
                }
                None => i += 1,
            },
            b';' if atomic_depth == 0 => {
                push(&mut out, sql, start..i + 1, std::mem::take(&mut words));
                start = i + 1;
                i += 1;
            }
            c if (c.is_ascii_alphabetic() || c == b'_' || c >= 0x80) && sql.is_char_boundary(i) => {
                let end = sql[i..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                    .map_or(b.len(), |n| i + n);
                if end == i {
                    // A symbol outside ASCII (a BOM, say): not part of any word.
                    i += sql[i..].chars().next().map_or(1, char::len_utf8);
                    continue;
                }
                let word = sql[i..end].to_ascii_uppercase();
                match word.as_str() {
                    "ATOMIC" if words.last().is_some_and(|w| w == "BEGIN") => atomic_depth += 1,
                    "CASE" if atomic_depth > 0 => atomic_depth += 1,
                    "END" if atomic_depth > 0 => atomic_depth -= 1,
                    _ => {}
                }
                words.push(word);
                i = end;
            }
            _ => i += 1,
        }
    }
    push(&mut out, sql, start..b.len(), words);
    out
}

fn push(out: &mut Vec<Stmt>, sql: &str, range: Range<usize>, words: Vec<String>) {
    if has_non_comment_content(&sql[range.clone()]) {
        out.push(Stmt { range, words });
    }
}

/// True when the text holds something other than white space, comments and semicolons.
fn has_non_comment_content(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = s[i..].find('\n').map_or(b.len(), |n| i + n + 1)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            c if c.is_ascii_whitespace() || c == b';' => i += 1,
            _ if s[i..].starts_with('\u{feff}') => i += 3,
            _ => return true,
        }
    }
    false
}

fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// `$tag$` or `$$` starting at `i`, if that is what stands there (not `$1`).
fn dollar_tag(sql: &str, i: usize) -> Option<&str> {
    let rest = &sql[i + 1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(k, c)| c == '_' || c.is_alphabetic() || (k > 0 && c.is_ascii_digit()));
    valid.then(|| &sql[i..i + end + 2])
}

/// Why a statement cannot run inside a transaction block, if it cannot.
pub fn needs_no_transaction(words: &[String]) -> Option<&'static str> {
    let w = |k: usize| words.get(k).map(String::as_str).unwrap_or("");
    let has = |word: &str| words.iter().any(|x| x == word);
    match (w(0), w(1)) {
        ("CREATE" | "DROP" | "REINDEX", _) if has("CONCURRENTLY") => Some("… CONCURRENTLY"),
        ("ALTER", "TABLE") if has("DETACH") && has("CONCURRENTLY") => {
            Some("DETACH PARTITION … CONCURRENTLY")
        }
        ("VACUUM", _) => Some("VACUUM"),
        ("ALTER", "SYSTEM") => Some("ALTER SYSTEM"),
        ("CREATE" | "DROP", "DATABASE") => Some("CREATE/DROP DATABASE"),
        ("CREATE" | "DROP", "TABLESPACE") => Some("CREATE/DROP TABLESPACE"),
        ("CREATE" | "DROP", "SUBSCRIPTION") => Some("CREATE/DROP SUBSCRIPTION"),
        ("REINDEX", "SYSTEM" | "DATABASE") => Some("REINDEX SYSTEM/DATABASE"),
        _ => None,
    }
}

/// Transaction control written into a migration would end db-init's own transaction early.
pub fn transaction_control(words: &[String]) -> Option<&'static str> {
    let w = |k: usize| words.get(k).map(String::as_str).unwrap_or("");
    let control = matches!(w(0), "COMMIT" | "ROLLBACK" | "ABORT" | "END")
        || (w(0) == "BEGIN" && w(1) != "ATOMIC")
        || (w(0) == "START" && w(1) == "TRANSACTION");
    control.then_some("transaction control (BEGIN / COMMIT / ...)")
}

/// Whether a statement opens (`Some(true)`) or ends (`Some(false)`) a transaction block.
pub fn opens_transaction(words: &[String]) -> Option<bool> {
    let w = |k: usize| words.get(k).map(String::as_str).unwrap_or("");
    match (w(0), w(1)) {
        ("BEGIN", "ATOMIC") => None,
        ("BEGIN", _) | ("START", "TRANSACTION") => Some(true),
        ("COMMIT" | "ROLLBACK" | "ABORT" | "END", _) => Some(false),
        _ => None,
    }
}

/// What a file with its own transaction control has committed so far, statement by
/// statement: a statement outside the file's own `BEGIN` commits at once; inside one, at the
/// file's `COMMIT`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Committed {
    /// Statements 1..=count are durable.
    pub count: usize,
    /// The file's own transaction is open.
    pub open: bool,
}

impl Committed {
    /// After statement number `n` (1-based) with keywords `words` succeeded.
    pub fn after(&mut self, n: usize, words: &[String]) {
        match opens_transaction(words) {
            Some(true) => self.open = true,
            Some(false) => {
                self.open = false;
                self.count = n;
            }
            None if !self.open => self.count = n,
            None => {}
        }
    }
}

/// Bytes of white space and comments before a statement's first keyword, so positions point
/// at the statement rather than at the comment above it.
pub fn leading_blank(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if b[i] == b'-' && b.get(i + 1) == Some(&b'-') {
            i = s[i..].find('\n').map_or(b.len(), |n| i + n + 1);
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(b, i);
        } else if s[i..].starts_with('\u{feff}') {
            i += 3;
        } else {
            break;
        }
    }
    i
}

/// What a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] [name] ON [ONLY] table ...`
/// creates: the index name (if given) and the table, as written (quoted or qualified).
pub struct ConcurrentIndex<'a> {
    pub name: Option<&'a str>,
    pub table: &'a str,
}

/// So a failed attempt's INVALID index can be found and dropped before the retry.
pub fn concurrent_index(stmt: &str) -> Option<ConcurrentIndex<'_>> {
    let rest = stmt.get(leading_blank(stmt)..)?;
    let mut tokens = Tokens { s: rest, at: 0 };
    let is = |t: &str, w: &str| t.eq_ignore_ascii_case(w);
    if !is(tokens.next()?, "CREATE") {
        return None;
    }
    let mut t = tokens.next()?;
    if is(t, "UNIQUE") {
        t = tokens.next()?;
    }
    if !is(t, "INDEX") || !is(tokens.next()?, "CONCURRENTLY") {
        return None;
    }
    let mut t = tokens.next()?;
    if is(t, "IF") {
        tokens.next()?;
        tokens.next()?;
        t = tokens.next()?;
    }
    let name = match is(t, "ON") {
        true => None,
        false => {
            let name = t;
            if !is(tokens.next()?, "ON") {
                return None;
            }
            Some(name)
        }
    };
    let mut table = tokens.next()?;
    if is(table, "ONLY") {
        table = tokens.next()?;
    }
    Some(ConcurrentIndex { name, table })
}

/// `"My Idx"` -> `My Idx`, `s.i` -> `i` (the relation name as the catalog stores it).
pub fn unquote_ident(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    match last.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_lowercase(),
    }
}

/// Words and quoted identifiers (a dotted name stays one token), separated by white space.
struct Tokens<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        while self.at < b.len() && b[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
        let start = self.at;
        while self.at < b.len() && !b[self.at].is_ascii_whitespace() && b[self.at] != b'(' {
            if b[self.at] == b'"' {
                self.at = skip_quoted(b, self.at, b'"', false);
            } else {
                self.at += 1;
            }
        }
        (self.at > start)
            .then(|| self.s.get(start..self.at))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        statements(sql)
            .into_iter()
            .map(|s| sql[s.range].trim())
            .collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "CREATE TABLE a (x text DEFAULT ';');\n-- c;omment\nINSERT INTO a VALUES ('it''s;');\n\
                   CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n\
                   SELECT \"we;ird\" FROM a; /* x; /* nested; */ y; */ SELECT E'\\';' ;";
        let parts = texts(sql);
        assert_eq!(parts.len(), 5, "{parts:?}");
        assert!(parts[2].starts_with("CREATE FUNCTION"));
        assert!(parts[2].ends_with("plpgsql;"));
        assert!(parts[4].starts_with("/* x;"));
    }

    #[test]
    fn comment_only_pieces_are_dropped() {
        assert!(statements("-- nothing here\n/* nor; here */\n").is_empty());
        assert_eq!(statements("SELECT 1;\n-- trailing comment\n").len(), 1);
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT 3;";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn detects_statements_that_cannot_run_in_a_transaction() {
        let words = |sql: &str| statements(sql).remove(0).words;
        assert!(needs_no_transaction(&words("CREATE INDEX CONCURRENTLY i ON t (x)")).is_some());
        assert!(needs_no_transaction(&words(
            "create unique index concurrently if not exists i on t (x)"
        ))
        .is_some());
        assert!(needs_no_transaction(&words("-- CONCURRENTLY\nCREATE INDEX i ON t (x)")).is_none());
        assert!(
            needs_no_transaction(&words("CREATE INDEX i ON t ((x = 'CONCURRENTLY'))")).is_none()
        );
        assert!(needs_no_transaction(&words("VACUUM ANALYZE t")).is_some());
        assert!(needs_no_transaction(&words("ALTER SYSTEM SET x = 1")).is_some());
        assert!(needs_no_transaction(&words("CREATE TABLE t (x int)")).is_none());
        assert!(transaction_control(&words("COMMIT")).is_some());
        assert!(transaction_control(&words("BEGIN;")).is_some());
        assert!(transaction_control(&words("DO $$ BEGIN NULL; END $$")).is_none());
    }

    #[test]
    fn names_the_index_and_table_of_a_concurrent_create() {
        let parts = |s: &str| {
            concurrent_index(s).map(|i| (i.name.map(str::to_string), i.table.to_string()))
        };
        assert_eq!(
            parts("CREATE INDEX CONCURRENTLY i ON t (x)"),
            Some((Some("i".into()), "t".into()))
        );
        assert_eq!(
            parts(
                "-- c\ncreate unique index concurrently if not exists \"My Idx\" on app.\"T\"(x)"
            ),
            Some((Some("\"My Idx\"".into()), "app.\"T\"".into()))
        );
        assert_eq!(
            parts("CREATE INDEX CONCURRENTLY ON ONLY s.t (x)"),
            Some((None, "s.t".into()))
        );
        assert!(parts("CREATE INDEX i ON t (x)").is_none());
        assert_eq!(unquote_ident("\"My \"\"Idx\""), "My \"Idx");
        assert_eq!(unquote_ident("s.Idx"), "idx");
    }
}
