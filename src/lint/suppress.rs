//! Suppression comments: db-init's own, which must give a reason, and the ones teams already
//! have for other linters, read with those linters' rule names.
//!
//! - `-- db-init-ignore <rule>[, <rule>]: <reason>`: the statement it is in or precedes;
//!   `-- db-init-ignore-file <rule>[, ...]: <reason>`: the whole file (`all` names every rule).
//! - `-- squawk-ignore [rules]`, `-- squawk-ignore-file [rules]` (squawk's names).
//! - `-- eugene: ignore [E1, E5]` (eugene's ids), `-- atlas:nolint [analyzers or codes]`.
//!
//! Without names a foreign directive covers every rule, as in its own tool.

use super::ids;

/// What the comments say about one rule at one statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Suppressed: the directive as written, with its reason.
    By(String),
    /// A db-init directive names the rule but gives no reason: not honoured, and said so.
    NoReason(String),
    None,
}

/// `statement`: the statement's text with the comments before it; `rest_of_line`: what follows
/// it on its last line (a trailing `-- eugene: ignore E5`); `file`: the whole file.
pub fn verdict(file: &str, statement: &str, rest_of_line: &str, rule: &str) -> Verdict {
    let Some(r) = ids::find(rule) else {
        return Verdict::None;
    };
    let mut out = Verdict::None;
    let local = comments(statement).chain(comments(rest_of_line));
    for (comment, file_wide) in local
        .map(|c| (c, false))
        .chain(comments(file).map(|c| (c, true)))
    {
        match directive(comment, file_wide, r) {
            Verdict::By(by) => return Verdict::By(by),
            Verdict::NoReason(by) => out = Verdict::NoReason(by),
            Verdict::None => {}
        }
    }
    out
}

/// The text of each `--` comment.
fn comments(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter_map(|l| l.find("--").and_then(|i| l.get(i + 2..)))
        .map(str::trim)
}

fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

fn directive(comment: &str, file_wide: bool, r: &ids::Rule) -> Verdict {
    let named = |list: &str, theirs: &[&str]| {
        let mut n = names(list).peekable();
        n.peek().is_none() || n.any(|x| theirs.iter().any(|t| t.eq_ignore_ascii_case(x)))
    };
    let ours = match file_wide {
        true => comment.strip_prefix("db-init-ignore-file"),
        false => comment
            .strip_prefix("db-init-ignore")
            .filter(|rest| !rest.starts_with("-file")),
    };
    if let Some(rest) = ours {
        let (list, reason) = rest.split_once(':').unwrap_or((rest, ""));
        let hit = names(list).any(|n| n == r.id || n == "all");
        return match (hit, reason.trim().is_empty()) {
            (false, _) => Verdict::None,
            (true, true) => Verdict::NoReason(format!("-- {comment}")),
            (true, false) => Verdict::By(format!("-- {comment}")),
        };
    }
    let foreign = match file_wide {
        true => comment
            .strip_prefix("squawk-ignore-file")
            .map(|l| named(l, r.squawk)),
        false => comment
            .strip_prefix("squawk-ignore")
            .filter(|rest| !rest.starts_with("-file"))
            .map(|l| named(l, r.squawk))
            .or_else(|| {
                comment
                    .strip_prefix("eugene:")
                    .and_then(|l| l.trim().strip_prefix("ignore"))
                    .map(|l| named(l, r.eugene))
            })
            .or_else(|| {
                comment
                    .strip_prefix("atlas:nolint")
                    .map(|l| named(l, r.atlas))
            }),
    };
    match foreign {
        Some(true) => Verdict::By(format!("-- {comment}")),
        _ => Verdict::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "index-not-concurrent";

    fn at(statement: &str) -> Verdict {
        verdict(statement, statement, "", RULE)
    }

    #[test]
    fn db_init_directives_need_a_reason() {
        assert!(matches!(
            at("-- db-init-ignore index-not-concurrent: built at night\nCREATE INDEX i ON t (x)"),
            Verdict::By(_)
        ));
        assert!(matches!(
            at("-- db-init-ignore index-not-concurrent\nCREATE INDEX i ON t (x)"),
            Verdict::NoReason(_)
        ));
        assert_eq!(
            at("-- db-init-ignore drop-column: gone\nCREATE INDEX i ON t (x)"),
            Verdict::None
        );
        let file = "-- db-init-ignore-file all: seeded table\nSELECT 1;\nCREATE INDEX i ON t (x);";
        assert!(matches!(
            verdict(file, "CREATE INDEX i ON t (x)", "", RULE),
            Verdict::By(_)
        ));
        // A statement-level directive elsewhere in the file covers only its own statement.
        let file = "-- db-init-ignore all: x\nSELECT 1;\nCREATE INDEX i ON t (x);";
        assert_eq!(
            verdict(file, "CREATE INDEX i ON t (x)", "", RULE),
            Verdict::None
        );
    }

    #[test]
    fn other_linters_directives_use_their_names() {
        assert!(matches!(
            at("-- squawk-ignore require-concurrent-index-creation\nCREATE INDEX i ON t (x)"),
            Verdict::By(_)
        ));
        assert_eq!(
            at("-- squawk-ignore ban-drop-column\nCREATE INDEX i ON t (x)"),
            Verdict::None
        );
        assert!(matches!(
            verdict("", "CREATE INDEX i ON t (x)", " -- eugene: ignore E6", RULE),
            Verdict::By(_)
        ));
        assert_eq!(
            verdict("", "CREATE INDEX i ON t (x)", " -- eugene: ignore E5", RULE),
            Verdict::None
        );
        assert!(matches!(
            at("-- atlas:nolint\nCREATE INDEX i ON t (x)"),
            Verdict::By(_)
        ));
        assert!(matches!(
            at("-- atlas:nolint PG101\nCREATE INDEX i ON t (x)"),
            Verdict::By(_)
        ));
        let file = "-- squawk-ignore-file\nCREATE INDEX i ON t (x);";
        assert!(matches!(
            verdict(file, "CREATE INDEX i ON t (x)", "", RULE),
            Verdict::By(_)
        ));
    }
}
