//! The rules added with the size tiers, each where it fires and where the catalog silences it.

use super::{second, table_with_rows};
use crate::harness::{write, TestDb};

#[test]
fn a_type_change_is_silent_when_the_cast_is_binary_coercible() {
    let db = TestDb::new("lint_types");
    table_with_rows(&db, 100);
    db.sql("ALTER TABLE t ADD COLUMN code varchar(20), ADD COLUMN n int");
    second(
        &db,
        "ALTER TABLE t ALTER COLUMN code TYPE varchar(40);\n\
         ALTER TABLE t ALTER COLUMN email TYPE varchar;\n\
         ALTER TABLE t ALTER COLUMN n TYPE bigint;\n\
         ALTER TABLE t ALTER COLUMN code TYPE varchar(10);\n",
    );
    let run = db.run(&["plan"]);
    run.expect(0);
    let out = &run.stdout;
    assert!(!out.contains("0002_next.sql:1:1"), "longer varchar:\n{out}");
    assert!(
        !out.contains("0002_next.sql:2:1"),
        "text to varchar:\n{out}"
    );
    assert!(
        out.contains("0002_next.sql:3:1: info[alter-column-type]"),
        "{out}"
    );
    assert!(
        out.contains("0002_next.sql:4:1: info[alter-column-type]"),
        "{out}"
    );
}

#[test]
fn maintenance_commands_and_rewriting_columns_fire_on_rows_and_not_on_new_tables() {
    let db = TestDb::new("lint_more");
    table_with_rows(&db, 100);
    second(
        &db,
        "REINDEX TABLE t;\n\
         ALTER TABLE t ADD COLUMN seq bigserial;\n\
         CREATE TABLE fresh (id int);\n\
         ALTER TABLE fresh ADD COLUMN seq bigserial;\n\
         DROP TABLE fresh;\n",
    );
    let run = db.run(&["plan"]);
    run.expect(0);
    let out = &run.stdout;
    assert!(
        out.contains("0002_next.sql:1:1: info[reindex-not-concurrent]"),
        "{out}"
    );
    assert!(
        out.contains("0002_next.sql:2:1: info[add-column-rewrite]"),
        "{out}"
    );
    assert!(
        !out.contains("0002_next.sql:4:1") && !out.contains("drop-table"),
        "a new table:\n{out}"
    );
    write(
        &db.work.join("migrations"),
        "0002_next.sql",
        "DROP TABLE t;\n",
    );
    let run = db.run(&["plan"]);
    assert!(
        run.stdout
            .contains("0002_next.sql:1:1: warning[drop-table]: ACCESS EXCLUSIVE on t"),
        "{}",
        run.stdout
    );
}
