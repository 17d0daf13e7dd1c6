//! `${NAME}` in a SQL seed: each token becomes a quoted literal (`E'...'`, whatever the value
//! holds), in code and in dollar-quoted bodies (`DO $$ ... $$`); comments are left alone, and a
//! token inside a quoted string or identifier is refused (it would become a literal inside a
//! literal). Keeps where each substitution went, so the server's error position maps back to
//! the file's line and column.

use std::ops::Range;

use super::vars::{token, Resolver};
use crate::pg::quote::quote_literal;

/// The text sent to the server, and where it differs from the file.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub text: String,
    /// Each substituted piece: its range in `text` and in the file.
    pieces: Vec<(Range<usize>, Range<usize>)>,
}

impl Sent {
    /// The file's byte offset of a byte offset in the sent text (a position inside a value
    /// maps to its token).
    pub fn file_offset(&self, at: usize) -> usize {
        let mut shift: isize = 0;
        for (sent, file) in &self.pieces {
            if at >= sent.end {
                shift = file.end as isize - sent.end as isize;
            } else if at >= sent.start {
                return file.start;
            } else {
                break;
            }
        }
        (at as isize + shift).max(0) as usize
    }
}

/// What went wrong and at which byte offset of the file.
pub type Failure = (usize, String);

/// The SQL text with its tokens substituted.
pub fn substitute(sql: &str, resolver: &mut Resolver) -> Result<Sent, Failure> {
    let b = sql.as_bytes();
    let mut sent = Sent::default();
    let mut copied = 0;
    let mut i = 0;
    // Copies the file up to `to` unchanged.
    let flush = |sent: &mut Sent, copied: &mut usize, to: usize| {
        sent.text.push_str(sql.get(*copied..to).unwrap_or(""));
        *copied = to;
    };
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = block_comment_end(b, i),
            q @ (b'\'' | b'"') => {
                let escapes = q == b'\'' && i > 0 && matches!(b[i - 1], b'E' | b'e');
                let end = quoted_end(b, i, q, escapes);
                let what = if q == b'\'' { "string" } else { "identifier" };
                constant(sql, i + 1..end, what, &mut sent, &mut copied)?;
                i = end;
            }
            b'$' => {
                if let Some(len) = dollar_tag(b, i) {
                    // A dollar-quoted body: tokens in its code are substituted (a DO block's),
                    // never in the strings it quotes itself.
                    let tag = &sql[i..i + len];
                    let body_start = i + len;
                    let body_end = sql[body_start..]
                        .find(tag)
                        .map_or(b.len(), |n| body_start + n);
                    let mut at = body_start;
                    while at < body_end {
                        if b[at] == b'\'' {
                            let escapes = at > 0 && matches!(b[at - 1], b'E' | b'e');
                            let end = quoted_end(b, at, b'\'', escapes).min(body_end);
                            constant(sql, at + 1..end, "string", &mut sent, &mut copied)?;
                            at = end;
                            continue;
                        }
                        if let Some(inner) =
                            dollar_tag(b, at).filter(|&l| sql.get(at..at + l) != Some(tag))
                        {
                            let inner_tag = sql.get(at..at + inner).unwrap_or("");
                            let from = at + inner;
                            let end = sql
                                .get(from..body_end)
                                .and_then(|r| r.find(inner_tag))
                                .map_or(body_end, |n| from + n);
                            constant(
                                sql,
                                from..end,
                                "dollar-quoted string",
                                &mut sent,
                                &mut copied,
                            )?;
                            at = (end + inner).min(body_end);
                            continue;
                        }
                        let next = substitute_at(sql, at, resolver, &mut sent, &mut copied)?;
                        if let Some((value_text, next)) = next {
                            if value_text.contains(tag) {
                                return Err((
                                    at,
                                    format!("the value would close its dollar-quoted body {tag}"),
                                ));
                            }
                            at = next;
                        } else {
                            at += 1;
                        }
                    }
                    i = (body_end + len).min(b.len());
                } else if let Some((_, next)) =
                    substitute_at(sql, i, resolver, &mut sent, &mut copied)?
                {
                    i = next;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    flush(&mut sent, &mut copied, b.len());
    Ok(sent)
}

/// At `at`: `$${NAME}` (the escape, `${NAME}` as text) or a token (its quoted value); returns
/// what was written and where the file goes on, or `None` when neither starts there.
fn substitute_at(
    sql: &str,
    at: usize,
    resolver: &mut Resolver,
    sent: &mut Sent,
    copied: &mut usize,
) -> Result<Option<(String, usize)>, Failure> {
    let rest = sql.get(at..).unwrap_or("");
    let (replacement, len) = if rest.starts_with("$${") && token(&rest[1..]).is_some() {
        let len = token(&rest[1..]).map_or(0, |t| t.len) + 1;
        (rest[1..len].to_string(), len)
    } else if let Some(t) = token(rest) {
        let value = resolver.value(&t, rest).map_err(|m| (at, m))?;
        (quote_literal(&value), t.len)
    } else {
        return Ok(None);
    };
    sent.text.push_str(sql.get(*copied..at).unwrap_or(""));
    let start = sent.text.len();
    sent.text.push_str(&replacement);
    sent.pieces.push((start..sent.text.len(), at..at + len));
    *copied = at + len;
    Ok(Some((replacement, at + len)))
}

/// A quoted string or identifier of the file (`range`: its text between the quotes): a token
/// there would become a literal inside a literal, so it is refused; the escape `$${NAME}`
/// still writes `${NAME}`.
fn constant(
    sql: &str,
    range: Range<usize>,
    what: &str,
    sent: &mut Sent,
    copied: &mut usize,
) -> Result<(), Failure> {
    let mut at = range.start;
    while at < range.end {
        let rest = sql.get(at..range.end).unwrap_or("");
        if rest.starts_with("$${") {
            if let Some(t) = token(&rest[1..]) {
                let len = t.len + 1;
                sent.text.push_str(sql.get(*copied..at).unwrap_or(""));
                let start = sent.text.len();
                sent.text.push_str(&rest[1..len]);
                sent.pieces.push((start..sent.text.len(), at..at + len));
                *copied = at + len;
                at += len;
                continue;
            }
        }
        if token(rest).is_some() {
            return Err((
                at,
                format!(
                    "a ${{...}} inside a quoted {what} is not substituted (a literal inside a \
                     literal): write it bare, outside the quotes, where it becomes a quoted \
                     literal; or $${{...}} for the text ${{...}} itself"
                ),
            ));
        }
        at += 1;
    }
    Ok(())
}

/// The end (exclusive) of the quoted text that opens at `start`.
fn quoted_end(b: &[u8], start: usize, q: u8, escapes: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            c if c == q && b.get(i + 1) == Some(&q) => i += 2,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end (exclusive) of the block comment that opens at `start` (they nest in PostgreSQL).
fn block_comment_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// The length of a dollar-quote tag (`$$`, `$body$`) at `i`, if one opens there: not `$1`,
/// not a `$` inside an identifier, and not `$${NAME}` (the escape).
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let ident = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    if i > 0 && (ident(b[i - 1]) || b[i - 1] == b'$') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len()
        && (b[j] == b'_' || b[j].is_ascii_alphabetic() || (j > i + 1 && b[j].is_ascii_digit()))
    {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    if j == i + 1 && b.get(j + 1) == Some(&b'{') {
        let s = std::str::from_utf8(&b[j..]).ok()?;
        if token(s).is_some() {
            return None;
        }
    }
    Some(j + 1 - i)
}

#[cfg(test)]
mod tests {
    use super::super::vars::{Resolver, Source};
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "E").then(|| "o'k".to_string())
    }

    fn sub(sql: &str) -> Result<String, Failure> {
        substitute(sql, &mut Resolver::new(Source::Env(&env))).map(|s| s.text)
    }

    #[test]
    fn literals_in_code_and_bodies_not_in_comments() {
        assert_eq!(
            sub("SELECT ${E}, $1, $${E} -- ${NOPE}\n/* ${NOPE} */").as_deref(),
            Ok("SELECT E'o''k', $1, ${E} -- ${NOPE}\n/* ${NOPE} */")
        );
        assert_eq!(
            sub("DO $$ BEGIN PERFORM ${E}; END $$; SELECT $${\"a\":1}$$::jsonb").as_deref(),
            Ok("DO $$ BEGIN PERFORM E'o''k'; END $$; SELECT $${\"a\":1}$$::jsonb")
        );
        match sub("SELECT 'x ${E}'") {
            Err((10, m)) => assert!(m.contains("inside a quoted string"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The escape works inside quotes too.
        assert_eq!(sub("SELECT '$${E}'").as_deref(), Ok("SELECT '${E}'"));
    }

    #[test]
    fn a_body_never_gets_a_value_inside_its_own_strings() {
        // Quoted inside a DO block, the value would leave its literal and run as code.
        for sql in [
            "DO $$ BEGIN RAISE NOTICE '${E}'; END $$;",
            "DO $$ BEGIN PERFORM $q$ ${E} $q$; END $$;",
        ] {
            match sub(sql) {
                Err((_, m)) => assert!(m.contains("inside a quoted"), "{sql}: {m}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert_eq!(
            sub("DO $$ BEGIN RAISE NOTICE '%', ${E}; END $$;").as_deref(),
            Ok("DO $$ BEGIN RAISE NOTICE '%', E'o''k'; END $$;")
        );
    }

    #[test]
    fn offsets_map_back_to_the_file() {
        let sent = substitute("SELECT ${E} + nope", &mut Resolver::new(Source::Env(&env)))
            .unwrap_or_default();
        let at = sent.text.find("nope").unwrap_or(0);
        assert_eq!(sent.file_offset(at), "SELECT ${E} + ".len());
        assert_eq!(sent.file_offset(8), 7);
    }
}
