//! Every command on every format (issue 21): the same two migrations written as each tool's
//! folder go through `validate --offline`, `plan`, `status`, `wait --migrated`, `run`, online
//! `validate`, an edit caught and `repair`ed where the tool keeps checksums, `baseline` of a
//! database whose first table is already there, `new` in the tool's naming, and `status` and
//! `run` over many databases.

use serde_json::Value;

use crate::harness::{write, TestDb};

struct Case {
    name: &'static str,
    /// `--layout`, where the folder alone does not tell (sqlx's names are numbered files').
    layout: Option<&'static str>,
    /// The folder's files; the first migration creates `a`, the second `b`.
    files: &'static [(&'static str, &'static str)],
    /// The file of the first migration, which the edit changes.
    first: &'static str,
    /// How `baseline --migration` names the first migration.
    first_id: &'static str,
    /// Whether the tool's history keeps a checksum, so an edit after applying is caught.
    checksums: bool,
    /// `new` writes files (Drizzle's folders are made by drizzle-kit).
    new: bool,
}

const JOURNAL: &str = r#"{"version":"7","dialect":"postgresql","entries":[
{"idx":0,"version":"7","when":1767225600000,"tag":"0000_a","breakpoints":true},
{"idx":1,"version":"7","when":1767225660000,"tag":"0001_b","breakpoints":true}]}
"#;

const A: &str = "CREATE TABLE a (id int);\n";
const B: &str = "CREATE TABLE b (id int);\n";

const CASES: &[Case] = &[
    Case {
        name: "numbered",
        layout: None,
        files: &[("1_a.sql", A), ("2_b.sql", B)],
        first: "1_a.sql",
        first_id: "1",
        checksums: true,
        new: true,
    },
    Case {
        name: "drizzle",
        layout: None,
        files: &[
            ("meta/_journal.json", JOURNAL),
            ("0000_a.sql", A),
            ("0001_b.sql", B),
        ],
        first: "0000_a.sql",
        first_id: "0000_a",
        checksums: true,
        new: false,
    },
    Case {
        name: "drizzle-v1",
        layout: None,
        files: &[
            ("20260101000000_a/migration.sql", A),
            ("20260101000100_b/migration.sql", B),
        ],
        first: "20260101000000_a/migration.sql",
        first_id: "20260101000000_a",
        checksums: true,
        new: false,
    },
    Case {
        name: "prisma",
        layout: None,
        files: &[
            ("migration_lock.toml", "provider = \"postgresql\"\n"),
            ("20260101000000_a/migration.sql", A),
            ("20260101000100_b/migration.sql", B),
        ],
        first: "20260101000000_a/migration.sql",
        first_id: "20260101000000_a",
        checksums: true,
        new: true,
    },
    Case {
        name: "golang-migrate",
        layout: None,
        files: &[
            ("1_a.up.sql", A),
            ("1_a.down.sql", "DROP TABLE a;\n"),
            ("2_b.up.sql", B),
        ],
        first: "1_a.up.sql",
        first_id: "1",
        checksums: false,
        new: true,
    },
    Case {
        name: "dbmate",
        layout: None,
        files: &[
            (
                "20260101000000_a.sql",
                "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n",
            ),
            (
                "20260101000100_b.sql",
                "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n",
            ),
        ],
        first: "20260101000000_a.sql",
        first_id: "20260101000000",
        checksums: false,
        new: true,
    },
    Case {
        name: "sqlx",
        layout: Some("sqlx"),
        files: &[("20260101000000_a.sql", A), ("20260101000100_b.sql", B)],
        first: "20260101000000_a.sql",
        first_id: "20260101000000",
        checksums: true,
        new: true,
    },
    Case {
        name: "flyway",
        layout: None,
        files: &[("V1__a.sql", A), ("V2__b.sql", B)],
        first: "V1__a.sql",
        first_id: "1",
        checksums: true,
        new: true,
    },
    Case {
        name: "goose",
        layout: None,
        files: &[
            (
                "20260101000000_a.sql",
                "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
            ),
            (
                "20260101000100_b.sql",
                "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
            ),
        ],
        first: "20260101000000_a.sql",
        first_id: "20260101000000",
        checksums: false,
        new: true,
    },
];

fn folder(db: &TestDb, case: &Case) {
    let dir = db.work.join("migrations");
    for (file, text) in case.files {
        let (sub, name) = file.rsplit_once('/').unwrap_or(("", file));
        write(&dir.join(sub), name, text);
    }
}

fn args<'a>(case: &Case, command: &[&'a str]) -> Vec<&'a str> {
    let mut out = command.to_vec();
    if let Some(layout) = case.layout {
        out.extend(["--layout", layout]);
    }
    out
}

fn tables(db: &TestDb) -> String {
    db.sql(
        "SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '') FROM pg_class \
         WHERE relname IN ('a', 'b') AND relkind = 'r'",
    )
}

fn status(db: &TestDb, case: &Case, code: i32) -> Value {
    let run = db.run(&args(case, &["status", "--format", "json"]));
    run.expect(code);
    let doc: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    doc["databases"][0].clone()
}

/// The command a refusal names for accepting an edit: `db-init repair --migration <tag>`.
fn named_repair(stderr: &str) -> String {
    let after = stderr
        .split("repair --migration ")
        .nth(1)
        .unwrap_or_else(|| panic!("no repair command named: {stderr}"));
    after
        .split(['`', ' ', '\n'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn every_command(case: &Case) {
    let id = case.name.replace('-', "_");
    let db = TestDb::new(&format!("every_{id}"));
    folder(&db, case);
    let layout = |doc: &Value| doc["layout"].as_str().unwrap_or_default().to_string();

    db.run(&args(case, &["validate", "--offline"])).expect(0);
    let plan = db.run(&args(case, &["plan"]));
    plan.expect(0);
    assert!(
        plan.stdout.contains("CREATE TABLE a") && plan.stdout.contains("CREATE TABLE b"),
        "{}: {}",
        case.name,
        plan.stdout
    );
    let pending = status(&db, case, 10);
    assert_eq!(layout(&pending), case.name, "{pending:#}");
    assert_eq!(pending["pending"], 2, "{pending:#}");
    db.run(&["wait", "--migrated", "--wait-timeout", "1s"])
        .expect(3);

    db.run(&args(case, &["run"])).expect(0);
    assert_eq!(tables(&db), "a,b", "{}", case.name);
    let done = status(&db, case, 0);
    assert_eq!((&done["applied"], &done["pending"]), (&2.into(), &0.into()));
    db.run(&args(case, &["validate"])).expect(0);
    db.run(&args(case, &["wait", "--migrated", "--wait-timeout", "5s"]))
        .expect(0);
    // Started again: nothing to do.
    db.run(&args(case, &["run"])).expect(0);

    if case.checksums {
        let path = db.work.join("migrations").join(case.first);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, format!("{text}-- edited after release\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        let edited = db.run(&args(case, &["run"]));
        edited.expect(7);
        assert!(
            edited.stderr.contains("changed after it was applied"),
            "{}: {}",
            case.name,
            edited.stderr
        );
        let tag = named_repair(&edited.stderr);
        db.run(&args(case, &["repair", "--migration", &tag]))
            .expect(0);
        db.run(&args(case, &["run"])).expect(0);
    }

    // A database whose first table was made by hand: baseline records it, run applies the rest.
    let other = TestDb::new(&format!("every_{id}_baseline"));
    folder(&other, case);
    other.sql(A);
    other
        .run(&args(case, &["baseline", "--migration", case.first_id]))
        .expect(0);
    other.run(&args(case, &["run"])).expect(0);
    assert_eq!(tables(&other), "a,b", "{}", case.name);
    let based = status(&other, case, 0);
    assert_eq!(
        (&based["applied"], &based["pending"]),
        (&2.into(), &0.into())
    );

    // Many databases: the migrated one up to date, a fresh one pending.
    let fresh = TestDb::new(&format!("every_{id}_fresh"));
    write(
        &db.work,
        "databases.txt",
        &format!("{}\n{}\n", db.name, fresh.name),
    );
    let set = db.run(&args(
        case,
        &[
            "status",
            "--format",
            "json",
            "--databases-file",
            "databases.txt",
        ],
    ));
    set.expect(10);
    let doc: Value =
        serde_json::from_str(&set.stdout).unwrap_or_else(|e| panic!("{e}: {}", set.stdout));
    let states: Vec<String> = doc["databases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} {}", layout(e), e["state"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        states,
        [
            format!("{} up_to_date", case.name),
            format!("{} pending", case.name)
        ],
        "{}",
        set.stdout
    );

    // A run over the set migrates the fresh one and leaves the other as it is.
    db.run(&args(case, &["run", "--databases-file", "databases.txt"]))
        .expect(0);
    assert_eq!(tables(&fresh), "a,b", "{}", case.name);
    db.run(&args(
        case,
        &["status", "--databases-file", "databases.txt"],
    ))
    .expect(0);

    if case.new {
        let made = db.run(&args(case, &["new", "add_c"]));
        made.expect(0);
        let pending = status(&db, case, 10);
        assert_eq!(pending["pending"], 1, "{}: {pending:#}", case.name);
    }
}

fn run_case(name: &str) {
    let case = CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    every_command(case);
}

#[test]
fn numbered() {
    run_case("numbered");
}

#[test]
fn drizzle() {
    run_case("drizzle");
}

#[test]
fn drizzle_v1() {
    run_case("drizzle-v1");
}

#[test]
fn prisma() {
    run_case("prisma");
}

#[test]
fn golang_migrate() {
    run_case("golang-migrate");
}

#[test]
fn dbmate() {
    run_case("dbmate");
}

#[test]
fn sqlx() {
    run_case("sqlx");
}

#[test]
fn flyway() {
    run_case("flyway");
}

#[test]
fn goose() {
    run_case("goose");
}
