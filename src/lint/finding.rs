//! A confirmed finding: where it is, what the catalog said, how severe it is for this table, and
//! whether it stops the run or was suppressed by a comment with its reason.

use crate::statement::Lock;

/// Scaled by the table's size in tiers (`lint_large`, `lint_huge`); a statement that would fail
/// is `Fails` whatever the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
    Fails,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Fails => "fails",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub rule: &'static str,
    pub severity: Severity,
    #[serde(serialize_with = "lock_text")]
    pub lock: Lock,
    /// Empty when the rule does not concern one table (a timeout switched off).
    pub table: String,
    /// The table's heap size, when the rule depends on it and the catalog was asked.
    pub bytes: Option<i64>,
    pub rows: Option<i64>,
    /// The rule depends on the table's size and no catalog was asked (`validate --offline`).
    pub size_unknown: bool,
    pub why: std::borrow::Cow<'static, str>,
    pub fix: &'static str,
    /// The statement would fail as written: the migration cannot succeed.
    pub fails: bool,
    /// The run stops on it (policy and overrides decided).
    pub stops: bool,
    /// The comment that suppressed it, with its reason: shown, never stops, never warns.
    pub suppressed: Option<String>,
    /// A db-init comment that names the rule without a reason: not honoured, and said so.
    pub unhonoured: Option<String>,
}

fn lock_text<S: serde::Serializer>(lock: &Lock, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&lock.to_string())
}

impl Finding {
    /// `"12.0 MB, ~150000 rows"`, or empty when the size is not part of the finding.
    pub fn size(&self) -> String {
        match (self.bytes, self.rows) {
            (Some(b), Some(r)) => format!("{}, ~{} rows", bytes(b), r.max(0)),
            (Some(b), None) => bytes(b),
            _ => String::new(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file,
            self.line,
            self.column,
            self.severity.as_str(),
            self.rule,
            self.lock
        )?;
        if !self.table.is_empty() {
            write!(f, " on {}", self.table)?;
        }
        let size = self.size();
        if !size.is_empty() {
            write!(f, " ({size})")?;
        } else if self.size_unknown {
            write!(f, " (size unknown: offline)")?;
        }
        write!(f, ": {}; instead: {}", self.why, self.fix)?;
        if let Some(by) = &self.suppressed {
            write!(f, " [suppressed: {by}]")?;
        }
        if let Some(by) = &self.unhonoured {
            write!(f, " [not suppressed: `{by}` gives no reason after `:`]")?;
        }
        Ok(())
    }
}

pub fn bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{} kB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(8192), "8 kB");
        assert_eq!(bytes(3 << 20), "3.0 MB");
    }
}
