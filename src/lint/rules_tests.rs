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
        ["add-column-volatile-default"]
    );
    match classify("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()").map(|s| s.candidates) {
        Some(c) => assert!(
            matches!(&c[..], [Candidate { needs: Needs::VolatileDefault(f), .. }] if f == &["now"])
        ),
        None => panic!("not parsed"),
    }
    assert!(rules("ALTER TABLE t ADD COLUMN c int DEFAULT 0").is_empty());
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN c int NOT NULL"),
        ["add-column-not-null-without-default"]
    );
    assert!(rules("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0").is_empty());
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
