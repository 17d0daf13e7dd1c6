//! goose's SQL file parser, as `internal/sqlparser/parser.go` (`ParseSQLMigration`, goose
//! v3.27.3) reads a file for `goose up`: the statements it sends, as byte ranges of the file,
//! and whether it runs them in a transaction. Where goose would send text that is not one
//! range of the file, or would change it (`ENVSUB ON` with a `$`), the file is refused with its
//! line rather than sent differently.

use std::ops::Range;

/// What goose reads from a file for `up`.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Each statement goose sends, trimmed as `cleanupStatement` trims it.
    pub statements: Vec<Range<usize>>,
    /// `-- +goose NO TRANSACTION` anywhere in the file.
    pub no_transaction: bool,
}

/// Why the file cannot be sent as goose sends it: 1-based line and the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Up,
    BeginUp,
    EndUp,
    Down,
    BeginDown,
    EndDown,
}

/// parser.go's `supportedAnnotations`, as they are spelled there.
const ANNOTATIONS: [&str; 7] = [
    "Up",
    "Down",
    "StatementBegin",
    "StatementEnd",
    "NO TRANSACTION",
    "ENVSUB ON",
    "ENVSUB OFF",
];

/// bufio.Scanner's buffer in parser.go (`scanBufSize`): a longer line stops goose.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// The text goose's line scanner sees: bufio.ScanLines drops the `\r` of each `\r\n` and of
/// a last line without `\n`. Line numbers and columns are unchanged (the `\r` ends its line).
pub fn scanner_text(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let crlf = b == b'\r' && bytes.get(i + 1) == Some(&b'\n');
        let last = b == b'\r' && i + 1 == bytes.len();
        if !crlf && !last {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// parser.go's `endsWithSemicolon`: the last whitespace-separated word before one that starts
/// with `--` ends with `;` (no SQL is parsed: a `;` inside a string ends a statement too).
fn ends_with_semicolon(line: &str) -> bool {
    let mut prev = "";
    for word in line.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if word.starts_with("--") {
            break;
        }
        prev = word;
    }
    prev.ends_with(';')
}

/// Go's `strings.EqualFold` for annotation names: ASCII case, plus the two non-ASCII runes
/// Unicode folds onto ASCII letters (the long s and the Kelvin sign).
fn equal_fold(a: &str, b: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17f}' => 's',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// parser.go's `extractAnnotation`.
fn annotation(line: &str) -> Result<&'static str, String> {
    if line.starts_with([' ', '\t']) {
        return Err(format!(
            "{line:?} contains leading whitespace: invalid annotation"
        ));
    }
    let cmd = line.replace("--", "").replacen("+goose", "", 1);
    if cmd.contains("+goose") {
        return Err(format!(
            "{cmd:?} contains multiple '+goose' annotations: invalid annotation"
        ));
    }
    let cmd = cmd.trim();
    if cmd.is_empty() {
        return Err("empty annotation".to_string());
    }
    ANNOTATIONS
        .iter()
        .find(|name| equal_fold(name, cmd))
        .copied()
        .ok_or_else(|| format!("{cmd:?} not supported: invalid annotation"))
}

const UNFINISHED: &str = "unfinished SQL query: missing semicolon?";
const STATEMENT_END: &str =
    "'-- +goose StatementEnd' must be defined after '-- +goose StatementBegin'";
const STATEMENT_BEGIN: &str =
    "'-- +goose StatementBegin' must be defined after '-- +goose Up' or '-- +goose Down' annotation";
const JOINED: &str = "goose leaves this annotation out of the statement around it and joins \
                      the lines before and after it into one statement; db-init sends a statement \
                      as the file holds it: end the statement with `;` before the annotation";
const ENVSUB: &str = "goose substitutes environment variables here (mfridman/interpolate: $VAR, \
                      ${VAR}, ${VAR:-default}, and $$ becomes $), which db-init does not";
const DROPPED: &str =
    "goose drops this line: it follows an empty StatementBegin/StatementEnd block";

/// The section annotations' moves in parser.go's state machine, and its refusals (`Some`: the
/// line of the unfinished statement rather than the annotation's).
fn transition(a: &str, state: State, p: &Parser) -> Result<State, (Option<usize>, &'static str)> {
    use State as S;
    match (a, state) {
        ("Up", S::Start) => Ok(S::Up),
        ("Up", _) => Err((None, "duplicate '-- +goose Up' annotations")),
        ("Down", S::Up | S::EndUp) => match p.first_content() {
            Some(open) => Err((Some(open), UNFINISHED)),
            None => Ok(S::Down),
        },
        ("Down", _) => Err((
            None,
            "'-- +goose Down' out of place (must start with '-- +goose Up')",
        )),
        ("StatementBegin", S::Up | S::EndUp) => Ok(S::BeginUp),
        ("StatementBegin", S::Down | S::EndDown) => Ok(S::BeginDown),
        ("StatementBegin", _) => Err((None, STATEMENT_BEGIN)),
        ("StatementEnd", S::BeginUp) => Ok(S::EndUp),
        ("StatementEnd", S::BeginDown) => Ok(S::EndDown),
        _ => Err((None, STATEMENT_END)),
    }
}

struct Parser<'a> {
    text: &'a str,
    /// (start, end) of each line, without its `\n`.
    lines: Vec<(usize, usize)>,
    /// Indices of the lines in goose's buffer.
    buf: Vec<usize>,
    out: Vec<Range<usize>>,
}

impl Parser<'_> {
    fn line(&self, i: usize) -> &str {
        let (s, e) = self.lines.get(i).copied().unwrap_or((0, 0));
        self.text.get(s..e).unwrap_or("")
    }

    fn has_content(&self, i: usize) -> bool {
        !self.line(i).trim().is_empty()
    }

    /// The first buffered line with something in it, when the buffer is not blank.
    fn first_content(&self) -> Option<usize> {
        self.buf.iter().copied().find(|&i| self.has_content(i))
    }

    /// Stores the buffer as one statement: `cleanupStatement(buf.String())`.
    fn store(&mut self) -> Result<(), ParseError> {
        let content = |i: &&usize| self.has_content(**i);
        let bounds = (
            self.buf.iter().find(content),
            self.buf.iter().rfind(content),
        );
        if let (Some(&first), Some(&last)) = bounds {
            // goose joins its buffered lines; a line it skipped between them (an annotation)
            // makes its statement something the file does not hold in one piece.
            if let Some(gap) = (first..=last).find(|i| self.buf.binary_search(i).is_err()) {
                return Err(ParseError {
                    line: gap + 1,
                    message: JOINED.to_string(),
                });
            }
            let (fs, _) = self.lines.get(first).copied().unwrap_or((0, 0));
            let (ls, _) = self.lines.get(last).copied().unwrap_or((0, 0));
            let first_line = self.line(first);
            let start = fs + (first_line.len() - first_line.trim_start().len());
            let end = ls + self.line(last).trim_end().len();
            self.out.push(start..end);
        }
        // A blank buffer is goose's empty query, which does nothing: nothing is sent.
        self.buf.clear();
        Ok(())
    }
}

/// Reads `text` (already [`scanner_text`]) as `goose up` does.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let mut lines = Vec::new();
    let mut at = 0;
    for piece in text.split_inclusive('\n') {
        let body = piece.strip_suffix('\n').unwrap_or(piece);
        lines.push((at, at + body.len()));
        at += piece.len();
    }
    let mut p = Parser {
        text,
        lines,
        buf: Vec::new(),
        out: Vec::new(),
    };
    let mut state = State::Start;
    let mut no_transaction = false;
    let mut envsub: Option<usize> = None;
    let err = |line: usize, message: &str| ParseError {
        line: line + 1,
        message: message.to_string(),
    };
    for i in 0..p.lines.len() {
        let line = p.line(i).to_string();
        if line.len() >= MAX_LINE {
            return Err(err(
                i,
                "longer than goose's 4 MiB line buffer (bufio.Scanner: token too long)",
            ));
        }
        if state == State::Start && line.trim().is_empty() {
            continue;
        }
        if line.trim_start().starts_with("--") && line.contains("+goose") {
            let a = annotation(&line).map_err(|m| err(i, &m))?;
            match a {
                "NO TRANSACTION" => no_transaction = true,
                "ENVSUB ON" => envsub = Some(i),
                "ENVSUB OFF" => envsub = None,
                _ => state = transition(a, state, &p).map_err(|(at, m)| err(at.unwrap_or(i), m))?,
            }
            // StatementEnd alone goes on: it is where goose stores the block.
            if a != "StatementEnd" {
                continue;
            }
        }
        // Before a statement starts, comments and empty lines (not blank ones) are skipped.
        if p.buf.is_empty() && (line.trim_start().starts_with("--") || line.is_empty()) {
            continue;
        }
        let up = matches!(state, State::Up | State::BeginUp | State::EndUp);
        if !matches!(state, State::EndUp | State::EndDown) {
            if let (Some(on), true) = (envsub, up && line.contains('$')) {
                let at = format!(
                    "inside `-- +goose ENVSUB ON` (line {}) and holds `$`",
                    on + 1
                );
                return Err(err(i, &format!("{at}: {ENVSUB}")));
            }
            p.buf.push(i);
        }
        match state {
            State::Start => return Err(err(i, "SQL before the '-- +goose Up' annotation")),
            State::Down | State::BeginDown | State::EndDown => p.buf.clear(),
            State::Up if ends_with_semicolon(&line) => p.store()?,
            State::EndUp => {
                if p.buf.is_empty() && !line.trim().is_empty() {
                    // An empty block: goose stores an empty query here and drops this line.
                    return Err(err(i, DROPPED));
                }
                p.store()?;
                state = State::Up;
            }
            State::Up | State::BeginUp => {}
        }
    }
    let last = p.lines.len().saturating_sub(1);
    let unfinished = match state {
        State::Start => Some((last, "must start with '-- +goose Up' annotation")),
        State::BeginUp | State::BeginDown => {
            Some((last, "missing '-- +goose StatementEnd' annotation"))
        }
        _ => p.first_content().map(|open| (open, UNFINISHED)),
    };
    if let Some((line, message)) = unfinished {
        return Err(err(line, message));
    }
    Ok(Parsed {
        statements: p.out,
        no_transaction,
    })
}

#[cfg(test)]
mod tests {
    //! Expected outputs follow `ParseSQLMigration` and `endsWithSemicolon` in goose v3.27.3's
    //! internal/sqlparser/parser.go, line by line.
    use super::*;

    fn up(text: &str) -> Vec<&str> {
        match parse(text) {
            Ok(p) => p
                .statements
                .into_iter()
                .filter_map(|r| text.get(r))
                .collect(),
            Err(e) => panic!("{e:?}"),
        }
    }

    fn error_line(text: &str) -> usize {
        parse(text).map_or_else(|e| e.line, |p| panic!("parsed: {p:?}"))
    }

    #[test]
    fn only_the_up_section_runs_split_at_lines_ending_in_a_semicolon() {
        let t = "-- a header\n\n-- +goose Up\nCREATE TABLE t (x int);\n\
                 INSERT INTO t VALUES (1); -- one\n\n-- +goose Down\nDROP TABLE t;\n";
        assert_eq!(
            up(t),
            [
                "CREATE TABLE t (x int);",
                "INSERT INTO t VALUES (1); -- one"
            ]
        );
        // Comments before a statement are dropped; once it has started they are part of it.
        let t = "-- +goose Up\n-- lead\nSELECT 1\n-- inside\n, 2;\n";
        assert_eq!(up(t), ["SELECT 1\n-- inside\n, 2;"]);
        // goose's rule, not SQL's: the last word before a `--` word ends in `;`.
        let t = "-- +goose Up\nSELECT 'x;\ny';\nSELECT 1; SELECT 2\n;\nSELECT 3;-- c\nSELECT 4;\n";
        assert_eq!(
            up(t),
            [
                "SELECT 'x;",
                "y';",
                "SELECT 1; SELECT 2\n;",
                "SELECT 3;-- c\nSELECT 4;"
            ]
        );
        // A blank (not empty) line starts goose's buffer, so the comment after it is kept.
        assert_eq!(up("-- +goose Up\n  \n-- c\nSELECT 1;"), ["-- c\nSELECT 1;"]);
    }

    #[test]
    fn statement_begin_and_end_make_one_statement_of_a_body_with_semicolons() {
        let body =
            "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;";
        let t = format!(
            "-- +goose Up\n-- +goose StatementBegin\n{body}\n-- +goose StatementEnd\nSELECT f();\n\
             -- +goose Down\n-- +goose StatementBegin\nDROP FUNCTION f();\n-- +goose StatementEnd\n"
        );
        assert_eq!(up(&t), [body, "SELECT f();"]);
        // Ranges are the file's: the statement after leading blanks starts at its column.
        let t = "-- +goose Up\n   SELECT 1;  \n";
        let p = parse(t).map_err(|e| e.message);
        assert_eq!(p.map(|p| p.statements.first().cloned()), Ok(Some(16..25)));
    }

    #[test]
    fn annotations_are_read_case_insensitively_and_no_transaction_anywhere() {
        let t = "--   +goose up\nSELECT 1;\n-- +goose DOWN\n-- +goose no transaction\n";
        assert_eq!(
            parse(t).map(|p| p.no_transaction).map_err(|e| e.message),
            Ok(true)
        );
        assert_eq!(up(t), ["SELECT 1;"]);
        assert_eq!(
            parse("-- +goose Up\nSELECT 1;\n").map(|p| p.no_transaction),
            Ok(false)
        );
        // `+goose` itself is matched case-sensitively (strings.Contains): a plain comment.
        assert_eq!(
            up("-- +goose Up\n-- +GOOSE Down\nSELECT 1;\n"),
            ["SELECT 1;"]
        );
    }

    #[test]
    fn what_goose_refuses_is_refused_at_its_line() {
        assert_eq!(error_line("SELECT 1;\n-- +goose Up\n"), 1);
        assert_eq!(error_line("-- just a comment\n"), 1);
        assert_eq!(error_line("-- +goose Up\n-- +goose Up\n"), 2);
        assert_eq!(error_line("-- +goose Up\n -- +goose StatementBegin\n"), 2);
        assert_eq!(error_line("-- +goose Up\n-- +goose Upp\n"), 2);
        assert_eq!(error_line("-- +goose Up\n-- see +goose docs\n"), 2);
        assert_eq!(error_line("-- +goose Up\n-- +goose StatementEnd\n"), 2);
        assert_eq!(error_line("-- +goose Up\nSELECT 1\n\n-- +goose Down\n"), 2);
        assert_eq!(error_line("-- +goose Up\nSELECT 1;\nSELECT 2\n"), 3);
        assert_eq!(
            error_line("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n"),
            3
        );
    }

    #[test]
    fn what_db_init_cannot_send_as_goose_does_is_refused_at_its_line() {
        // An annotation inside a statement: goose sends the lines around it joined.
        let t = "-- +goose Up\nSELECT 1\n-- +goose StatementBegin\n, 2;\n-- +goose StatementEnd\n";
        assert_eq!(error_line(t), 3);
        // An empty block: goose drops the line after it.
        let t = "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\nSELECT 1;\n";
        assert_eq!(error_line(t), 4);
        // ENVSUB: only a line with `$` can change, and only in the up section.
        let t = "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\nSELECT '${X}';\n";
        assert_eq!(error_line(t), 4);
        let t =
            "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n-- +goose ENVSUB OFF\nSELECT $$x$$;\n";
        assert_eq!(up(t), ["SELECT 1;", "SELECT $$x$$;"]);
    }

    #[test]
    fn the_scanner_drops_the_carriage_return_of_each_line() {
        assert_eq!(scanner_text(b"a\r\nb\rc\r\n\r"), b"a\nb\rc\n");
        assert!(ends_with_semicolon("SELECT 1; -- done;x"));
        assert!(!ends_with_semicolon("SELECT 1 --;"));
        assert!(equal_fold("StatementBegin", "\u{17f}tatementbegin"));
    }
}
