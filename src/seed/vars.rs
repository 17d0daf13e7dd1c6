//! Values from the environment in seeds: `${NAME}` and `${NAME:-default}` resolved from the
//! process environment (or the file `NAME_FILE` names, for secrets) when the seeds are read, so
//! a missing one stops the run before anything connects; the token grammar, the `$${NAME}`
//! escape, and keeping the values out of errors. SQL quoting is in `vars_sql`.

use crate::pg::ServerError;

/// One resolved `${...}` token of a seed.
#[derive(Debug, Clone)]
pub struct Var {
    /// The token as written (`${NAME}` or `${NAME:-default}`): what plan shows, and what an
    /// error shows instead of the value.
    pub token: String,
    pub(super) value: String,
    /// Read from `NAME_FILE`: a secret, which not even a hash of reaches the record.
    pub(super) secret: bool,
}

/// A `${...}` token at the start of a text.
pub(super) struct Token<'a> {
    pub name: &'a str,
    pub default: Option<&'a str>,
    /// Its length in bytes, `${` to `}`.
    pub len: usize,
}

/// `${NAME}` or `${NAME:-default}` (NAME as `[A-Za-z_][A-Za-z0-9_]*`) at the start of `s`;
/// anything else (`$1`, `$$`, `${1}`, an unclosed `${`) is not a token and stays as written.
pub(super) fn token(s: &str) -> Option<Token<'_>> {
    let rest = s.strip_prefix("${")?;
    let name_len = rest
        .bytes()
        .enumerate()
        .take_while(|&(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
        .count();
    let name = rest.get(..name_len).filter(|n| !n.is_empty())?;
    let after = rest.get(name_len..)?;
    if after.starts_with('}') {
        return Some(Token {
            name,
            default: None,
            len: 2 + name_len + 1,
        });
    }
    let default = after.strip_prefix(":-")?;
    let end = default.find('}')?;
    Some(Token {
        name,
        default: default.get(..end),
        len: 2 + name_len + 2 + end + 1,
    })
}

/// Where values come from: the environment when the seeds are read, then the values found
/// then (so a seed's statements and its checksum use the same values).
pub(super) enum Source<'a> {
    Env(&'a dyn Fn(&str) -> Option<String>),
    Known(&'a [Var]),
}

/// Resolves tokens and remembers each one resolved (once per distinct token).
pub(super) struct Resolver<'a> {
    source: Source<'a>,
    pub vars: Vec<Var>,
}

impl<'a> Resolver<'a> {
    pub fn new(source: Source<'a>) -> Resolver<'a> {
        Resolver {
            source,
            vars: Vec::new(),
        }
    }

    /// The value of `token`, or why there is none (the message never holds a value).
    pub fn value(&mut self, token: &Token, text: &str) -> Result<String, String> {
        let written = text.get(..token.len).unwrap_or(token.name);
        if let Some(v) = self.vars.iter().find(|v| v.token == written) {
            return Ok(v.value.clone());
        }
        let (value, secret) = match &self.source {
            Source::Known(vars) => vars
                .iter()
                .find(|v| v.token == written)
                .map(|v| (v.value.clone(), v.secret))
                .ok_or_else(|| format!("{written} was not resolved when the seed was read"))?,
            Source::Env(env) => from_env(token, env)?,
        };
        self.vars.push(Var {
            token: written.to_string(),
            value: value.clone(),
            secret,
        });
        Ok(value)
    }
}

/// `NAME`, else the content of the file `NAME_FILE` names (its trailing newline trimmed),
/// else the default; as in a shell, `${NAME:-default}` also takes the default when NAME is
/// empty. The flag says the value came from the file (a secret).
fn from_env(token: &Token, env: &dyn Fn(&str) -> Option<String>) -> Result<(String, bool), String> {
    let name = token.name;
    let file_var = format!("{name}_FILE");
    let direct = env(name);
    let file = env(&file_var).filter(|f| !f.is_empty());
    let mut secret = false;
    let value = match (direct, file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "both {name} and {file_var} are set: set one (which one is meant?)"
            ))
        }
        (Some(v), None) => Some(v),
        (None, Some(path)) => {
            let read = std::fs::read(&path)
                .map_err(|e| format!("{file_var} names {path}, which cannot be read: {e}"))?;
            let text = String::from_utf8(read)
                .map_err(|_| format!("{file_var} names {path}, which is not UTF-8"))?;
            if text.contains('\0') {
                return Err(format!(
                    "{file_var} names {path}, which holds a NUL byte (no PostgreSQL text can)"
                ));
            }
            let trimmed = text.strip_suffix('\n').unwrap_or(&text);
            let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
            secret = true;
            Some(trimmed.to_string())
        }
        (None, None) => None,
    };
    match (value, token.default) {
        (Some(v), Some(d)) if v.is_empty() => Ok((d.to_string(), false)),
        (Some(v), _) => Ok((v, secret)),
        (None, Some(d)) => Ok((d.to_string(), false)),
        (None, None) => Err(format!(
            "${{{name}}} is not set (set {name}, or {file_var} to a file holding it, or write \
             ${{{name}:-default}})"
        )),
    }
}

/// The process environment, as the seeds read it.
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `text` with its tokens replaced by their values and `$${NAME}` by `${NAME}`; `Err` carries
/// the byte offset of the token that failed and why.
pub(super) fn expand(text: &str, resolver: &mut Resolver) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(found) = text.get(i..).and_then(|s| s.find('$')) {
        let at = i + found;
        let rest = text.get(at..).unwrap_or("");
        if rest.starts_with("$${") && token(rest.get(1..).unwrap_or("")).is_some() {
            out.push_str(text.get(copied..at).unwrap_or(""));
            copied = at + 1;
            i = at + 2;
        } else if let Some(t) = token(rest) {
            out.push_str(text.get(copied..at).unwrap_or(""));
            out.push_str(&resolver.value(&t, rest).map_err(|m| (at, m))?);
            copied = at + t.len;
            i = copied;
        } else {
            i = at + 1;
        }
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Ok(out)
}

/// Every string of a YAML value (rows, and the values nested in them) expanded; `Err` names the
/// token as written and why it failed.
pub(super) fn expand_yaml(
    value: &mut serde_norway::Value,
    resolver: &mut Resolver,
) -> Result<(), (String, String)> {
    use serde_norway::Value;
    match value {
        Value::String(s) => {
            let expanded = expand(s, resolver).map_err(|(at, m)| {
                let rest = s.get(at..).unwrap_or("");
                let written = token(rest).and_then(|t| rest.get(..t.len)).unwrap_or(rest);
                (written.to_string(), m)
            })?;
            *s = expanded;
        }
        Value::Sequence(items) => {
            for item in items {
                expand_yaml(item, resolver)?;
            }
        }
        Value::Mapping(map) => {
            for (_, v) in map.iter_mut() {
                expand_yaml(v, resolver)?;
            }
        }
        Value::Tagged(tagged) => expand_yaml(&mut tagged.value, resolver)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// Values shorter than this are not looked for in messages: a one-letter default would garble
/// every word that holds its letter, and is no secret.
const SHORTEST_HIDDEN: usize = 4;

/// `text` with every value substituted into the seed shown as its `${...}` token (longest
/// value first, so a value inside another is not half replaced), also as the server quotes a
/// literal (`E'...'`, `''` and `\\` doubled).
pub(super) fn hide(vars: &[Var], text: &str) -> String {
    let mut forms: Vec<(String, &str)> = Vec::new();
    for v in vars.iter().filter(|v| v.value.len() >= SHORTEST_HIDDEN) {
        let doubled = v.value.replace('\\', "\\\\").replace('\'', "''");
        forms.push((crate::pg::quote::quote_literal(&v.value), &v.token));
        forms.push((doubled, &v.token));
        forms.push((v.value.clone(), &v.token));
    }
    forms.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
    let mut text = text.to_string();
    for (form, token) in forms {
        text = text.replace(&form, token);
    }
    text
}

/// The token of a value that `text` may still quote in part or changed (a cast error quoting a
/// piece, `upper()`, a key of `lower(col)`): a word of four or more letters or digits of the
/// text that is part of the value, case aside.
fn quoted_in_part<'v>(vars: &'v [Var], text: &str) -> Option<&'v str> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= SHORTEST_HIDDEN)
        .map(str::to_lowercase)
        .collect();
    vars.iter()
        .filter(|v| v.value.len() >= SHORTEST_HIDDEN)
        .find(|v| {
            let value = v.value.to_lowercase();
            words.iter().any(|w| value.contains(w.as_str()))
        })
        .map(|v| v.token.as_str())
}

/// The server's error with no value of the seed in it: a secret never reaches a log line
/// through an error that quotes it. What may still quote one in part is withheld whole; the
/// SQLSTATE and the place stay.
pub(super) fn redact(vars: &[Var], mut error: ServerError) -> ServerError {
    error.message = hide(vars, &error.message);
    for part in [&mut error.detail, &mut error.hint].into_iter().flatten() {
        *part = hide(vars, part);
    }
    let parts = [
        Some(&error.message),
        error.detail.as_ref(),
        error.hint.as_ref(),
    ];
    let leak = parts
        .into_iter()
        .flatten()
        .find_map(|p| quoted_in_part(vars, p).map(str::to_string));
    if let Some(token) = leak {
        error.message = format!(
            "(the server's message is withheld: it may quote part of the value of {token})"
        );
        error.detail = None;
        error.hint = None;
    }
    error
}

/// The checksum of a seed: of its text alone when it has no tokens (what earlier versions
/// recorded), else also of each plain value's SHA-256, so a changed value reruns an
/// `on-change` seed. A secret (`NAME_FILE`) is left out: an unsalted hash of a short password
/// in the record (and in `plan`) could be guessed offline.
pub(super) fn checksum(text: &str, vars: &[Var]) -> String {
    if vars.is_empty() {
        return crate::text::sha256_hex(text);
    }
    let mut all = String::from(text);
    for v in vars.iter().filter(|v| !v.secret) {
        all.push_str(&format!(
            "\n-- db-init value {} {}",
            v.token,
            crate::text::sha256_hex(&v.value)
        ));
    }
    crate::text::sha256_hex(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("x'y".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, (usize, String)> {
        expand(text, &mut Resolver::new(Source::Env(&env)))
    }

    #[test]
    fn tokens_defaults_and_the_escape() {
        assert_eq!(run("a ${A} b").as_deref(), Ok("a x'y b"));
        assert_eq!(
            run("${B:-dflt}|${EMPTY:-e}|${EMPTY}").as_deref(),
            Ok("dflt|e|")
        );
        assert_eq!(
            run("$${A} $1 $$ ${1} ${").as_deref(),
            Ok("${A} $1 $$ ${1} ${")
        );
        match run("ok ${MISSING}") {
            Err((3, m)) => assert!(m.contains("${MISSING} is not set"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_are_hidden_in_errors() {
        let vars = [Var {
            token: "${PW}".into(),
            value: "hunter2".into(),
            secret: true,
        }];
        let e = ServerError {
            sqlstate: Some("22P02".into()),
            message: "invalid input: \"hunter2\"".into(),
            detail: Some("Key (pw)=(hunter2)".into()),
            hint: None,
        };
        let e = redact(&vars, e);
        assert_eq!(e.message, "invalid input: \"${PW}\"");
        assert_eq!(e.detail.as_deref(), Some("Key (pw)=(${PW})"));
        let vars = [Var {
            token: "${PW}".into(),
            value: "TOPSECRET'q-v".into(),
            secret: true,
        }];
        let quoted = |m: &str| {
            let e = ServerError {
                sqlstate: Some("42601".into()),
                message: m.into(),
                detail: None,
                hint: None,
            };
            redact(&vars, e).message
        };
        // As the server quotes the literal, in part, and changed.
        assert_eq!(
            quoted("syntax error at or near \"E'TOPSECRET''q-v'\""),
            "syntax error at or near \"${PW}\""
        );
        for leak in [
            "Token \"TOPSECRET\" is invalid",
            "Key (lower(l))=(topsecret)",
        ] {
            assert!(quoted(leak).contains("withheld"), "{leak}");
        }
        // A short value (a default) garbles nothing.
        let vars = [Var {
            token: "${X:-a}".into(),
            value: "a".into(),
            secret: false,
        }];
        let e = ServerError {
            sqlstate: None,
            message: "syntax error at".into(),
            detail: None,
            hint: None,
        };
        assert_eq!(redact(&vars, e).message, "syntax error at");
    }
}
