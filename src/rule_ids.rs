//! Every rule's stable id, and the names other linters give the same check, so the suppression
//! comments a team already has (`-- squawk-ignore`, `-- eugene: ignore`, `-- atlas:nolint`) keep
//! working. A leaf: the settings check rule names against it.

pub struct Rule {
    pub id: &'static str,
    pub squawk: &'static [&'static str],
    pub eugene: &'static [&'static str],
    /// Atlas's analyzer names and check codes.
    pub atlas: &'static [&'static str],
}

const fn r(
    id: &'static str,
    squawk: &'static [&'static str],
    eugene: &'static [&'static str],
    atlas: &'static [&'static str],
) -> Rule {
    Rule {
        id,
        squawk,
        eugene,
        atlas,
    }
}

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    r("index-not-concurrent", &["require-concurrent-index-creation"], &["E6"], &["concurrent_index", "PG101"]),
    r("drop-index-not-concurrent", &["require-concurrent-index-deletion"], &[], &["concurrent_index", "PG102"]),
    r("reindex-not-concurrent", &[], &[], &[]),
    r("constraint-builds-index", &["disallowed-unique-constraint", "adding-serial-primary-key-field"], &["E7", "E8"], &["data_depend", "MF101"]),
    r("foreign-key-not-valid", &["adding-foreign-key-constraint", "constraint-missing-not-valid"], &["E1"], &[]),
    r("check-not-valid", &["constraint-missing-not-valid"], &["E1"], &[]),
    r("set-not-null", &["adding-not-nullable-field"], &["E2"], &["data_depend", "MF104"]),
    r("add-column-not-null-without-default", &["adding-required-field"], &[], &["data_depend", "MF103"]),
    r("add-column-volatile-default", &["adding-field-with-default"], &["E10"], &[]),
    r("add-column-default-before-11", &["adding-field-with-default"], &[], &[]),
    r("add-column-rewrite", &["adding-serial-primary-key-field"], &["E11"], &[]),
    r("alter-column-type", &["changing-column-type"], &["E5"], &[]),
    r("drop-column", &["ban-drop-column"], &[], &["destructive", "DS103"]),
    r("drop-table", &["ban-drop-table"], &[], &["destructive", "DS102"]),
    r("rename-column", &["renaming-column"], &[], &["incompatible", "BC102"]),
    r("rename-table", &["renaming-table"], &[], &["incompatible", "BC101"]),
    r("timeout-off", &[], &[], &[]),
    r("attach-partition-scan", &[], &[], &[]),
    r("detach-partition-not-concurrent", &[], &[], &[]),


    r("cluster", &[], &[], &[]),
    r("vacuum-full", &[], &[], &[]),
    r("refresh-not-concurrent", &[], &[], &[]),
    r(ENUM_RULE, &[], &[], &[]),
    r(SESSION_RULE, &[], &[], &[]),
    r(INVALID_INDEX_RULE, &[], &[], &[]),
];

/// Not from a statement: an INVALID index on a table the pending statements touch.
pub const INVALID_INDEX_RULE: &str = "invalid-index";

/// Across statements: an enum label added and used in one transaction (55P04).
pub const ENUM_RULE: &str = "enum-value-used-in-transaction";

/// Not from a statement: a session that holds a conflicting lock on its table now.
pub const SESSION_RULE: &str = "blocked-by-session";

pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }
}
