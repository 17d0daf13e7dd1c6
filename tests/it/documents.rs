//! The JSON documents of `status`, `validate`, `plan` and `run --report`: one design on one
//! database and on many, and the README's examples checked against the real output (every
//! field of the real document is in the example, and the example has no field the real one lacks).

use serde_json::Value;

use crate::harness::{repo, server, write, TestDb};

/// The README's example for `name` (the ```json block after `<!-- document: name -->`).
fn readme_example(name: &str) -> Value {
    let readme =
        std::fs::read_to_string(repo().join("README.md")).unwrap_or_else(|e| panic!("{e}"));
    let marker = format!("<!-- document: {name} -->");
    let after = readme
        .split_once(&marker)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("README has no {marker}"));
    let block = after
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .unwrap_or_else(|| panic!("no json block after {marker}"));
    serde_json::from_str(block).unwrap_or_else(|e| panic!("README {marker}: {e}"))
}

/// Every path of keys in `doc` (arrays: their first element stands for all).
fn shape(doc: &Value, prefix: &str, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{prefix}.{k}");
                out.push(path.clone());
                shape(v, &path, out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                shape(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The example and the real document have the same fields where both have an example value:
/// an empty array in either says nothing about its elements.
fn same_shape(name: &str, real: &Value) {
    let (mut want, mut got) = (Vec::new(), Vec::new());
    shape(&readme_example(name), "", &mut want);
    shape(real, "", &mut got);
    let under_both = |p: &String, other: &[String]| {
        // A path whose array parent is empty on the other side is not compared.
        p.match_indices("[]").all(|(i, _)| {
            let parent = &p[..i + 2];
            other.iter().any(|o| o.starts_with(parent))
        })
    };
    let missing: Vec<&String> = got
        .iter()
        .filter(|p| !want.contains(p) && under_both(p, &want))
        .collect();
    let extra: Vec<&String> = want
        .iter()
        .filter(|p| !got.contains(p) && under_both(p, &got))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README example `{name}`: fields the README lacks {missing:?}, fields the output lacks {extra:?}\nreal:\n{real:#}"
    );
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// One migration applied, one (an index) pending: the README's examples' database.
fn one_applied_one_pending(db: &TestDb) {
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_users.sql",
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);\n",
    );
    db.run(&["migrate"]).expect(0);
    write(
        &dir,
        "0002_email.sql",
        "CREATE INDEX users_email ON users (email);\n",
    );
}

#[test]
fn one_database_documents_match_the_readme_and_share_one_design() {
    let db = TestDb::new("doc_one");
    one_applied_one_pending(&db);
    let status = db.run(&["status", "--format", "json"]);
    status.expect(10);
    let status = json(&status.stdout);
    same_shape("status", &status);
    assert_eq!(
        (&status["state"], &status["exit_code"], &status["total"]),
        (&Value::from("pending"), &Value::from(10), &Value::from(1))
    );
    assert_eq!(status["databases"][0]["database"], db.name.as_str());
    assert_eq!(status["databases"][0]["migrations"][1]["state"], "pending");

    let validate = db.run(&["validate", "--format", "json"]);
    validate.expect(0);
    let validate = json(&validate.stdout);
    same_shape("validate", &validate);
    assert_eq!(validate["databases"][0]["state"], "valid");

    let plan = db.run(&["plan", "--format", "json"]);
    plan.expect(0);
    let plan = json(&plan.stdout);
    same_shape("plan", &plan);
    let step = &plan["databases"][0]["steps"][0];
    assert_eq!(step["migrations"][0], "0002_email.sql", "{plan:#}");
    assert!(
        step["sql"]
            .as_str()
            .unwrap_or("")
            .contains("CREATE INDEX users_email"),
        "{plan:#}"
    );
    // The text plan is the document's `sql`, byte for byte.
    let text = db.run(&["plan", "--lint", "off"]);
    text.expect(0);
    assert_eq!(plan["databases"][0]["sql"], text.stdout.as_str());

    let report = db.work.join("report.json");
    let run = db.run(&["run", "--report", report.to_str().unwrap_or("")]);
    run.expect(0);
    let report = json(&std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}")));
    same_shape("run --report", &report);
    let e = &report["databases"][0];
    assert_eq!(
        (
            &report["state"],
            &e["state"],
            &e["applied"],
            &e["already_applied"]
        ),
        (
            &Value::from("done"),
            &Value::from("done"),
            &Value::from(1),
            &Value::from(1)
        ),
        "{report:#}"
    );
    // Every state and top-level field the documents carry is named in the README.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap_or_default();
    for doc in [&status, &validate, &plan, &report] {
        let mut paths = Vec::new();
        shape(doc, "", &mut paths);
        for p in paths {
            let key = p.rsplit(['.', ']']).next().unwrap_or("");
            if !key.is_empty() && !p.starts_with(".counts") {
                assert!(
                    readme.contains(&format!("`{key}`")),
                    "README does not name `{key}` ({p})"
                );
            }
        }
        for state in doc["counts"].as_object().into_iter().flat_map(|m| m.keys()) {
            assert!(
                readme.contains(&format!("| `{state}` |")),
                "README has no row for state `{state}`"
            );
        }
    }
}

#[test]
fn a_failed_run_on_one_database_writes_its_report_with_the_error_and_exit_code() {
    let db = TestDb::new("doc_fail");
    write(
        &db.work.join("migrations"),
        "0001_bad.sql",
        "CREATE TABLE a (x int);\nSELECT no_such_column FROM a;\n",
    );
    let path = db.work.join("report.json");
    let run = db.run(&["run", "--report", path.to_str().unwrap_or("")]);
    run.expect(6);
    let report = json(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")));
    let e = &report["databases"][0];
    assert_eq!(
        (
            &report["state"],
            &report["exit_code"],
            &e["state"],
            &e["exit_code"]
        ),
        (
            &Value::from("failed"),
            &Value::from(6),
            &Value::from("failed"),
            &Value::from(6)
        ),
        "{report:#}"
    );
    let error = e["error"].as_str().unwrap_or("");
    assert!(
        error.contains("0001_bad.sql") && error.contains("42703"),
        "{report:#}"
    );
    assert_eq!(report["counts"]["failed"], 1);
}

#[test]
fn many_databases_print_the_same_document_with_one_entry_each() {
    let db = TestDb::new("doc_many");
    let other = TestDb::new("doc_many_b");
    one_applied_one_pending(&db);
    let file = format!("{}\n{}\n", db.name, server().url(&other.name));
    write(&db.work, "databases.txt", &file);
    let many = ["--databases-file", "databases.txt"];
    let status = db.run(&[&["status", "--format", "json"][..], &many[..]].concat());
    status.expect(10);
    let status = json(&status.stdout);
    same_shape("status", &status);
    assert_eq!(status["total"], 2);
    assert_eq!(status["counts"]["pending"], 2, "{status:#}");
    let validate = db.run(&[&["validate", "--format", "json"][..], &many[..]].concat());
    validate.expect(0);
    let validate = json(&validate.stdout);
    assert_eq!(
        (
            &validate["command"],
            &validate["state"],
            &validate["counts"]["valid"]
        ),
        (
            &Value::from("validate"),
            &Value::from("valid"),
            &Value::from(2)
        ),
        "{validate:#}"
    );
    let path = db.work.join("many.json");
    let report = ["--report", path.to_str().unwrap_or("")];
    db.run(&[&["run"][..], &many[..], &report[..]].concat())
        .expect(0);
    let report = json(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")));
    same_shape("run --report", &report);
    assert_eq!(report["counts"]["done"], 2, "{report:#}");
}
