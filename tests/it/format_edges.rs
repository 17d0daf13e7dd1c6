//! Edge cases of the other tools' folders found by a black-box attack (issue 21): each is
//! refused before anything runs, or read as its tool reads it, never half-applied.

use crate::harness::{write, TestDb};

fn refused(db: &TestDb, dir: &str, needle: &str) {
    let run = db.run(&["run", "--migrations", dir]);
    run.expect(7);
    assert!(run.stderr.contains(needle), "{}", run.stderr);
}

#[test]
fn goose_files_that_goose_would_cut_or_that_hide_their_sections_are_refused() {
    let db = TestDb::new("edges_goose");
    // A BOM before `-- +goose Up`: still goose's file, which goose's parser refuses; its Down
    // section never runs as part of a numbered file.
    let bom = db.work.join("bom");
    write(
        &bom,
        "00001_users.sql",
        "\u{feff}-- +goose Up\nCREATE TABLE users (id int);\n-- +goose Down\nDROP TABLE users;\n",
    );
    refused(&db, "bom", "00001_users.sql");
    // A line ending in `;` inside a string: goose sends the pieces on their own.
    let cut = db.work.join("cut");
    write(
        &cut,
        "00001_a.sql",
        "-- +goose Up\nCREATE TABLE gx (t text);\nINSERT INTO gx VALUES ('a;\nb');\n",
    );
    refused(&db, "cut", "00001_a.sql:3:1");
    // A plpgsql body without StatementBegin: refused, not half-applied outside a transaction.
    let body = db.work.join("body");
    write(
        &body,
        "00001_f.sql",
        "-- +goose Up\nCREATE TABLE gr1 (id int);\nCREATE FUNCTION h() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\n",
    );
    refused(&db, "body", "StatementBegin");
    // goose files after a plain first file: read as numbered, their Down would run.
    let mixed = db.work.join("mixed");
    write(&mixed, "00001_a.sql", "CREATE TABLE a (id int);\n");
    write(
        &mixed,
        "00002_b.sql",
        "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
    );
    refused(&db, "mixed", "layout: goose");
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
    // A dbmate file without its up block (a BOM hides it from dbmate's pattern too).
    let dbmate = db.work.join("dbmate");
    write(
        &dbmate,
        "20240101000000_a.sql",
        "-- migrate:up\nCREATE TABLE d (id int);\n-- migrate:down\n",
    );
    write(
        &dbmate,
        "20240102000000_b.sql",
        "-- migrate:down\nDROP TABLE d;\n",
    );
    refused(
        &db,
        "dbmate",
        "20240102000000_b.sql: no `-- migrate:up` block",
    );
}

#[test]
fn flyway_scripts_in_subfolders_only_and_versions_too_long_for_its_table() {
    let db = TestDb::new("edges_flyway");
    let sub = db.work.join("fw/sub");
    write(&sub, "V7__a.sql", "CREATE TABLE a (id int);\n");
    db.run(&["run", "--migrations", "fw"]).expect(0);
    assert_eq!(
        db.sql("SELECT script FROM flyway_schema_history"),
        "sub/V7__a.sql"
    );
    let long = db.work.join("long");
    let name = format!("V{}__a.sql", "1".repeat(55));
    write(&long, &name, "CREATE TABLE half (i int);\n");
    write(
        &long,
        &format!("{name}.conf"),
        "executeInTransaction=false\n",
    );
    refused(&db, "long", "longer than the 50 characters");
    assert_eq!(db.sql("SELECT to_regclass('public.half') IS NULL"), "t");
}

#[test]
fn a_prisma_folder_without_its_lock_file_is_read_as_prisma_by_its_table() {
    let db = TestDb::new("edges_prisma");
    let dir = db.work.join("p");
    write(
        &dir.join("20240101120000_init"),
        "migration.sql",
        "CREATE TABLE a (id int);\n",
    );
    db.sql(
        "CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, \
         finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, \
         started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0)",
    );
    db.run(&["run", "--migrations", "p"]).expect(0);
    assert_eq!(
        db.sql("SELECT migration_name FROM _prisma_migrations"),
        "20240101120000_init"
    );
}

#[test]
fn new_refuses_a_version_it_cannot_count_on_from() {
    let db = TestDb::new("edges_new");
    write(
        &db.work.join("g"),
        "9223372036854775807_a.sql",
        "-- +goose Up\nSELECT 1;\n",
    );
    let run = db.run(&["new", "x", "--migrations", "g"]);
    run.expect(2);
    assert!(run.stderr.contains("largest there is"), "{}", run.stderr);
    write(
        &db.work.join("f"),
        "V123456789012345678901234567890__huge.sql",
        "SELECT 1;\n",
    );
    let run = db.run(&["new", "x", "--migrations", "f"]);
    run.expect(2);
    assert!(run.stderr.contains("too large"), "{}", run.stderr);
}

#[test]
fn a_flyway_scripts_conf_is_read_as_flyway_reads_it() {
    let db = TestDb::new("edges_conf");
    let dir = db.work.join("fw");
    write(
        &dir,
        "V1__a.sql",
        "CREATE TABLE a (t text DEFAULT '${kept}');\n",
    );
    write(&dir, "V1__a.sql.conf", "placeholderReplacement=false\n");
    db.run(&["run", "--migrations", "fw"]).expect(0);
    write(&dir, "V2__b.sql", "SELECT 1;\n");
    write(&dir, "V2__b.sql.conf", "encoding=ISO-8859-1\n");
    refused(&db, "fw", "V2__b.sql.conf: `encoding=ISO-8859-1`");
}
