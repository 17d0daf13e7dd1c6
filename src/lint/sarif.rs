//! Findings as documents for pipelines: SARIF 2.1.0 (GitHub code scanning, GitLab) and JSON.

use std::path::Path;

use serde_json::{json, Value};

use super::finding::{Finding, Severity};

/// One SARIF run of db-init: every rule that fired, every finding with its place (relative to
/// the repository, as code scanning wants it) and, when suppressed, the comment's justification.
pub fn sarif(findings: &[Finding], migrations: &Path) -> Value {
    let mut rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    rules.sort();
    rules.dedup();
    let rule_docs: Vec<Value> = rules
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f.rule == *id);
            json!({
                "id": id,
                "name": friendly_name(id),
                "shortDescription": { "text": f.map_or("", |f| &*f.why) },
                "help": { "text": f.map_or("", |f| f.fix) },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut r = json!({
                "ruleId": f.rule,
                "level": match f.severity {
                    Severity::Info => "note",
                    Severity::Warning => "warning",
                    Severity::Critical | Severity::Fails => "error",
                },
                "message": { "text": f.to_string() },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(migrations, &f.file) },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
                "properties": { "severity": f.severity.as_str(), "lock": f.lock.to_string(), "table": f.table, "bytes": f.bytes, "stops": f.stops },
            });
            if let (Some(by), Some(obj)) = (&f.suppressed, r.as_object_mut()) {
                obj.insert(
                    "suppressions".into(),
                    json!([{ "kind": "inSource", "justification": by }]),
                );
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "db-init",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_docs,
            }},
            "results": results,
        }],
    })
}

/// `index-not-concurrent` -> `IndexNotConcurrent`, the Pascal-case name SARIF viewers show.
fn friendly_name(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// `./migrations` + `0002_x.sql` -> `migrations/0002_x.sql` (forward slashes, no `./`).
fn uri(migrations: &Path, file: &str) -> String {
    let joined = migrations.join(file).to_string_lossy().replace('\\', "/");
    let mut s = joined.as_str();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_with_forward_slashes() {
        assert_eq!(
            uri(Path::new("./migrations"), "0001_a.sql"),
            "migrations/0001_a.sql"
        );
        assert_eq!(
            uri(Path::new("drizzle"), "20250101_x/migration.sql"),
            "drizzle/20250101_x/migration.sql"
        );
    }
}
