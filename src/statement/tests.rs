use super::*;

fn rules(sql: &str) -> Vec<&'static str> {
    classify(sql)
        .map(|s| s.candidates.iter().map(|c| c.rule).collect())
        .unwrap_or_default()
}

fn lock(sql: &str) -> Option<Lock> {
    classify(sql).and_then(|s| s.lock.map(|(l, _)| l))
}

#[test]
fn index_builds() {
    assert_eq!(rules("CREATE INDEX i ON t (x)"), ["index-not-concurrent"]);
    assert!(rules("CREATE INDEX CONCURRENTLY i ON t (x)").is_empty());
    assert_eq!(lock("CREATE INDEX i ON s.t (x)"), Some(Lock::Share));
    assert_eq!(
        lock("CREATE INDEX CONCURRENTLY i ON t (x)"),
        Some(Lock::ShareUpdateExclusive)
    );
}

#[test]
fn constraints_without_not_valid() {
    assert_eq!(
        rules("ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b) REFERENCES b (id)"),
        ["foreign-key-not-valid"]
    );
    assert!(
        rules("ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b) REFERENCES b (id) NOT VALID")
            .is_empty()
    );
    assert_eq!(
        rules("ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0)"),
        ["check-not-valid"]
    );
    assert!(rules("ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0) NOT VALID").is_empty());
    assert_eq!(
        lock("ALTER TABLE a VALIDATE CONSTRAINT c"),
        Some(Lock::ShareUpdateExclusive)
    );
    assert_eq!(
        rules("ALTER TABLE a ADD CONSTRAINT u UNIQUE (x)"),
        ["constraint-builds-index"]
    );
    assert!(rules("ALTER TABLE a ADD CONSTRAINT u UNIQUE USING INDEX i").is_empty());
}

#[test]
fn columns() {
    assert_eq!(
        rules("ALTER TABLE t ALTER COLUMN c SET NOT NULL"),
        ["set-not-null"]
    );
    assert_eq!(
        rules("ALTER TABLE t ALTER COLUMN c TYPE bigint"),
        ["alter-column-type"]
    );
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()"),
        [
            "add-column-volatile-default",
            "add-column-default-before-11"
        ]
    );
    match classify("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()").map(|s| s.candidates) {
        Some(c) => assert!(
            matches!(&c[..], [Candidate { needs: Needs::VolatileDefault(f), .. }, Candidate { needs: Needs::OldServerDefault(_), .. }] if f == &["now"])
        ),
        None => panic!("not parsed"),
    }
    // A constant default: only a server before 11 rewrites for it (the catalog decides).
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN c int DEFAULT 0"),
        ["add-column-default-before-11"]
    );
    assert!(rules("ALTER TABLE t ADD COLUMN c int").is_empty());
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN c int NOT NULL"),
        ["add-column-not-null-without-default"]
    );
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0"),
        ["add-column-default-before-11"]
    );
    assert_eq!(rules("ALTER TABLE t DROP COLUMN c"), ["drop-column"]);
    assert_eq!(
        rules("ALTER TABLE t RENAME COLUMN a TO b"),
        ["rename-column"]
    );
    assert_eq!(rules("ALTER TABLE t RENAME TO u"), ["rename-table"]);
}

#[test]
fn strictest_subcommand_wins() {
    assert_eq!(
        lock("ALTER TABLE t SET (fillfactor = 70), ADD COLUMN c int"),
        Some(Lock::AccessExclusive)
    );
    assert_eq!(
        lock("ALTER TABLE t SET (fillfactor = 70)"),
        Some(Lock::ShareUpdateExclusive)
    );
}

#[test]
fn timeouts_and_creates_and_unknown_syntax() {
    assert_eq!(rules("SET lock_timeout = 0"), ["timeout-off"]);
    assert!(rules("SET lock_timeout = '2s'").is_empty());
    let s = classify("CREATE TABLE s.n (id int)");
    let creates: Vec<String> = s
        .iter()
        .flat_map(|s| &s.creates)
        .map(ToString::to_string)
        .collect();
    assert_eq!(creates, ["s.n"]);
    assert!(classify("CREATE FROBNICATE everything").is_none());
    let huge = format!("INSERT INTO t VALUES ('{}')", "x".repeat(MAX_BYTES));
    assert!(classify(&huge).is_none(), "a bulk statement is not parsed");
    assert!(rules("DROP INDEX CONCURRENTLY i").is_empty());
    assert_eq!(rules("DROP INDEX i"), ["drop-index-not-concurrent"]);
}

#[test]
fn maintenance_and_partitions() {
    assert_eq!(rules("REINDEX TABLE t"), ["reindex-not-concurrent"]);
    assert_eq!(lock("REINDEX INDEX i"), Some(Lock::Share));
    assert!(rules("REINDEX TABLE CONCURRENTLY t").is_empty());
    assert!(rules("REINDEX (CONCURRENTLY) INDEX i").is_empty());
    assert_eq!(rules("CLUSTER t USING i"), ["cluster"]);
    assert_eq!(rules("VACUUM (FULL) t"), ["vacuum-full"]);
    assert!(rules("VACUUM t").is_empty());
    assert_eq!(
        rules("REFRESH MATERIALIZED VIEW v"),
        ["refresh-not-concurrent"]
    );
    assert_eq!(
        lock("REFRESH MATERIALIZED VIEW CONCURRENTLY v"),
        Some(Lock::Exclusive)
    );
    assert_eq!(
        rules("ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)"),
        ["attach-partition-scan"]
    );
    assert_eq!(
        lock("ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)"),
        Some(Lock::ShareUpdateExclusive)
    );
    match classify("ALTER TABLE p ATTACH PARTITION s.p1 FOR VALUES IN (1)").map(|s| s.candidates) {
        Some(c) => assert_eq!(c.first().map(|c| c.table.to_string()), Some("s.p1".into())),
        None => panic!("not parsed"),
    }
    assert_eq!(
        rules("ALTER TABLE p DETACH PARTITION p1"),
        ["detach-partition-not-concurrent"]
    );
    assert!(rules("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY").is_empty());
    assert_eq!(rules("DROP TABLE a, s.b"), ["drop-table", "drop-table"]);
}

#[test]
fn rewriting_columns() {
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN id bigserial"),
        ["add-column-rewrite"]
    );
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN id int GENERATED ALWAYS AS IDENTITY"),
        ["add-column-rewrite"]
    );
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED"),
        ["add-column-rewrite"]
    );
    let to = |sql: &str| match classify(sql).map(|s| s.candidates) {
        Some(c) => match c.first().map(|c| &c.needs) {
            Some(Needs::Rewrite { to, .. }) => to.clone(),
            other => panic!("{other:?}"),
        },
        None => panic!("not parsed"),
    };
    assert_eq!(
        to("ALTER TABLE t ALTER COLUMN c TYPE text"),
        Some(("text".into(), -1))
    );
    assert_eq!(
        to("ALTER TABLE t ALTER COLUMN c TYPE character varying(20)"),
        Some(("varchar".into(), 24))
    );
    assert_eq!(to("ALTER TABLE t ALTER COLUMN c TYPE numeric(10, 2)"), None);
    assert_eq!(
        to("ALTER TABLE t ALTER COLUMN c TYPE int USING c::int"),
        None
    );
}

/// The id table (suppressions, overrides) and the classifier agree: each statement below raises
/// its rule, and every id is raised by one of them.
#[test]
fn every_rule_has_an_id() {
    let corpus = [
        "CREATE INDEX i ON t (x)",
        "DROP INDEX i",
        "REINDEX TABLE t",
        "ALTER TABLE a ADD CONSTRAINT u UNIQUE (x)",
        "ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b) REFERENCES b (id)",
        "ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0)",
        "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
        "ALTER TABLE t ADD COLUMN c int NOT NULL",
        "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE t ADD COLUMN id bigserial",
        "ALTER TABLE t ALTER COLUMN c TYPE bigint",
        "ALTER TABLE t DROP COLUMN c",
        "DROP TABLE t",
        "ALTER TABLE t RENAME COLUMN a TO b",
        "ALTER TABLE t RENAME TO u",
        "SET lock_timeout = 0",
        "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)",
        "ALTER TABLE p DETACH PARTITION p1",
        "CLUSTER t USING i",
        "VACUUM (FULL) t",
        "REFRESH MATERIALIZED VIEW v",
    ];
    let mut raised: Vec<&str> = corpus.iter().flat_map(|sql| rules(sql)).collect();
    for id in &raised {
        assert!(crate::rule_ids::find(id).is_some(), "{id} is not in ids.rs");
    }
    raised.sort();
    raised.dedup();
    let mut ids: Vec<&str> = crate::rule_ids::RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| {
            ![
                crate::rule_ids::SESSION_RULE,
                crate::rule_ids::ENUM_RULE,
                crate::rule_ids::INVALID_INDEX_RULE,
            ]
            .contains(id)
        })
        .collect();
    ids.sort();
    assert_eq!(raised, ids);
}

#[test]
fn lock_conflicts_follow_the_docs_table() {
    use Lock::*;
    assert!(AccessExclusive.conflicts(AccessShare));
    assert!(!AccessShare.conflicts(RowExclusive));
    assert!(Share.conflicts(RowExclusive));
    assert!(!Share.conflicts(Share));
    assert!(!RowExclusive.conflicts(RowExclusive));
    assert!(ShareUpdateExclusive.conflicts(ShareUpdateExclusive));
    assert!(!ShareUpdateExclusive.conflicts(RowExclusive));
    assert!(RowShare.conflicts(Exclusive) && !RowShare.conflicts(ShareRowExclusive));
    assert_eq!(
        Lock::from_pg("ShareRowExclusiveLock"),
        Some(ShareRowExclusive)
    );
}

#[test]
fn added_labels_and_string_constants_are_collected() {
    let s = classify("ALTER TYPE \"public\".\"role\" ADD VALUE 'billing'");
    assert_eq!(s.map(|s| s.adds_labels), Some(vec!["billing".to_string()]));
    let s = classify("ALTER TABLE u ALTER COLUMN role SET DEFAULT 'billing'");
    assert_eq!(s.map(|s| s.strings), Some(vec!["billing".to_string()]));
}
