//! Parsers for setting values (durations, booleans, names) and the YAML file's flattening.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_norway::Value;

use super::settings;

/// `250ms`, `30s`, `10m`, `1h`; a bare number is seconds (fractions allowed: `1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err("expected a duration such as 250ms, 30s, 10m or a number of seconds".into())
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| "expected a duration such as 250ms, 30s, 10m or a number of seconds")?;
    Duration::try_from_secs_f64(n * scale).map_err(|e| e.to_string())
}

/// A duration within `min..=max`: every wait must be bounded, and no setting may overflow a
/// deadline (`Instant + d`) or PostgreSQL's millisecond settings.
pub fn duration_in(min: Duration, max: Duration) -> impl Fn(&str) -> Result<Duration, String> {
    move |s| {
        let d = parse_duration(s)?;
        if d < min || d > max {
            return Err(format!("expected from {min:?} to {max:?}"));
        }
        Ok(d)
    }
}

/// What PostgreSQL accepts for `statement_timeout` / `lock_timeout`: up to 2^31 - 1 ms.
pub const PG_MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);
/// A bound for waits: a year.
pub const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// `error`, `warn`, `info`, `debug`, `trace`, `off`, or a filter of `target=level` pieces; a
/// typo would otherwise silence everything, the final error included.
pub fn parse_log_level(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let ok = !s.is_empty()
        && s.split(',').all(|piece| {
            let level = piece.rsplit_once('=').map_or(piece, |(_, l)| l).trim();
            LEVELS.contains(&level.to_ascii_lowercase().as_str())
        });
    match ok {
        true => Ok(s.to_string()),
        false => Err(format!(
            "expected one of {} or a filter such as db_init=debug",
            LEVELS.join(", ")
        )),
    }
}

pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// Comma-separated names (`a, b`); the YAML file may also give a list.
pub fn parse_list(s: &str) -> Result<Vec<String>, String> {
    Ok(s.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect())
}

pub fn parse_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("expected a path".into());
    }
    Ok(PathBuf::from(s))
}

/// Names that end up quoted as SQL identifiers: PostgreSQL truncates at 63 bytes and forbids NUL.
pub fn parse_identifier(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 63 || s.contains('\0') {
        return Err("expected a name of 1 to 63 bytes".into());
    }
    Ok(s.to_string())
}

/// An identifier that may be left unset (empty: `None`).
pub fn parse_optional_identifier(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    parse_identifier(s).map(Some)
}

pub enum YamlError {
    Syntax(String),
    UnknownKey(String),
}

/// Reads the YAML file into `key -> text`, nested maps joined with `.` (`drizzle.schema`).
/// Any key that is not a setting is rejected by name.
pub fn flatten_yaml(text: &str) -> Result<BTreeMap<String, String>, YamlError> {
    let root: Value = serde_norway::from_str(text).map_err(|e| YamlError::Syntax(e.to_string()))?;
    let mut out = BTreeMap::new();
    match root {
        Value::Null => {}
        Value::Mapping(map) => flatten_into("", &map, &mut out)?,
        _ => {
            return Err(YamlError::Syntax(
                "the top level must be a mapping of settings".into(),
            ))
        }
    }
    Ok(out)
}

fn flatten_into(
    prefix: &str,
    map: &serde_norway::Mapping,
    out: &mut BTreeMap<String, String>,
) -> Result<(), YamlError> {
    for (k, v) in map {
        let Some(k) = k.as_str() else {
            return Err(YamlError::Syntax(format!("key {k:?} is not a string")));
        };
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Mapping(inner)
                if settings::keys().any(|known| known.starts_with(&format!("{key}."))) =>
            {
                flatten_into(&key, inner, out)?
            }
            _ if settings::find(&key).is_none() => return Err(YamlError::UnknownKey(key)),
            Value::String(s) => {
                out.insert(key, s.clone());
            }
            Value::Number(n) => {
                out.insert(key, n.to_string());
            }
            Value::Bool(b) => {
                out.insert(key, b.to_string());
            }
            Value::Null => {}
            Value::Sequence(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => parts.push(s.clone()),
                        Value::Number(n) => parts.push(n.to_string()),
                        _ => {
                            return Err(YamlError::Syntax(format!(
                                "`{key}` must be a list of names"
                            )))
                        }
                    }
                }
                out.insert(key, parts.join(","));
            }
            _ => return Err(YamlError::Syntax(format!("`{key}` must be a single value"))),
        }
    }
    Ok(())
}

/// The known name nearest to a mistyped one, if it is at most `max_edits` edits away: a likely
/// typo.
pub fn closest<'a>(
    key: &str,
    known: impl Iterator<Item = &'a str>,
    max_edits: usize,
) -> Option<String> {
    known
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= max_edits)
        .min()
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_are_checked() {
        assert!(parse_log_level("info").is_ok());
        assert!(parse_log_level("db_init=debug,warn").is_ok());
        assert!(parse_log_level("eror").is_err());
        assert!(parse_log_level("db_init=verbose").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(duration_in(Duration::ZERO, MAX_WAIT)("10000000000000000000").is_err());
        assert!(duration_in(Duration::ZERO, PG_MAX_TIMEOUT)("3000000s").is_err());
        assert!(duration_in(Duration::from_millis(1), MAX_WAIT)("0").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn yaml_nested_and_scalars() {
        let v = flatten_yaml("wait_timeout: 30\natomic: true\ndrizzle:\n  schema: ops\n").ok();
        let v = v.unwrap_or_default();
        assert_eq!(v.get("wait_timeout").map(String::as_str), Some("30"));
        assert_eq!(v.get("atomic").map(String::as_str), Some("true"));
        assert_eq!(v.get("drizzle.schema").map(String::as_str), Some("ops"));
    }

    #[test]
    fn yaml_unknown_key_is_named() {
        match flatten_yaml("wait_timout: 3\n") {
            Err(YamlError::UnknownKey(k)) => assert_eq!(k, "wait_timout"),
            _ => panic!("expected an unknown key"),
        }
        match flatten_yaml("drizzle:\n  shema: x\n") {
            Err(YamlError::UnknownKey(k)) => assert_eq!(k, "drizzle.shema"),
            _ => panic!("expected an unknown key"),
        }
        assert_eq!(
            closest("wait_timout", settings::keys(), 3).as_deref(),
            Some("wait_timeout")
        );
    }
}
