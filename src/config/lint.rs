//! The lock analysis's settings: the policy, the size tiers that scale a finding's severity,
//! and per-rule overrides, checked against the rule ids when the configuration is read.

use super::value::closest;

/// `off`, `warn` (findings are logged; only a statement that would fail stops the run),
/// `error` (every finding of warning severity or above stops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lint {
    Off,
    Warn,
    Error,
}

/// A rule's override: `off` (not reported), `info` / `warn` (reported at that level, never
/// stops the run, even with `lint: error`), `error` (stops the run wherever it fires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleLevel {
    Off,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub struct LintSettings {
    pub mode: Lint,
    /// From this many bytes of table a finding is a warning; below it, information.
    pub large: u64,
    /// From this many bytes a finding is critical.
    pub huge: u64,
    pub rules: Vec<(String, RuleLevel)>,
}

impl LintSettings {
    pub fn level(&self, rule: &str) -> Option<RuleLevel> {
        self.rules.iter().find(|(r, _)| r == rule).map(|(_, l)| *l)
    }
}

pub fn parse_mode(s: &str) -> Result<Lint, String> {
    match s {
        "off" => Ok(Lint::Off),
        "warn" => Ok(Lint::Warn),
        "error" => Ok(Lint::Error),
        _ => Err("expected `off`, `warn` or `error`".into()),
    }
}

/// `10MB`, `1GB`, `512kB`, `0`; a bare number is bytes. Units are PostgreSQL's (1024-based).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    const HINT: &str = "expected a size such as 512kB, 10MB, 1GB or a number of bytes";
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        _ => return Err(HINT.into()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| HINT.into())
}

/// `rename-column=off, drop-column=error`: each name must be a rule id.
pub fn parse_rules(s: &str) -> Result<Vec<(String, RuleLevel)>, String> {
    let mut out = Vec::new();
    for piece in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((rule, level)) = piece.split_once('=') else {
            return Err(format!("`{piece}`: expected rule=off|info|warn|error"));
        };
        let rule = rule.trim();
        if crate::rule_ids::find(rule).is_none() {
            let ids = crate::rule_ids::RULES.iter().map(|r| r.id);
            return Err(match closest(rule, ids, 3) {
                Some(near) => format!("unknown rule `{rule}` (did you mean `{near}`?)"),
                None => format!("unknown rule `{rule}`"),
            });
        }
        let level = match level.trim() {
            "off" => RuleLevel::Off,
            "info" => RuleLevel::Info,
            "warn" => RuleLevel::Warn,
            "error" => RuleLevel::Error,
            other => {
                return Err(format!(
                    "`{other}` for {rule}: expected off, info, warn or error"
                ))
            }
        };
        out.push((rule.to_string(), level));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rules_parse() {
        assert_eq!(parse_bytes("10MB"), Ok(10 << 20));
        assert_eq!(parse_bytes("512kB"), Ok(512 << 10));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("99999999999999TB").is_err());
        assert_eq!(
            parse_rules("drop-column=error, rename-column = off"),
            Ok(vec![
                ("drop-column".into(), RuleLevel::Error),
                ("rename-column".into(), RuleLevel::Off)
            ])
        );
        assert!(
            parse_rules("drop-colum=off").is_err_and(|e| e.contains("did you mean `drop-column`"))
        );
        assert!(parse_rules("drop-column").is_err());
    }
}
