//! The README's RBAC example, exactly as written there (the blocks after `<!-- rbac: path -->`):
//! seeded twice with no change on the second run (no row rewritten, `pg_dump` of the data and
//! every sequence identical), the application's inserts after the pinned ids succeeding, and the
//! secret absent from every output.

use super::data_dump;
use crate::harness::{repo, write, Run, TestDb};

const HASH: &str = "$2b$12$SECRETsaltsaltsaltsaltuK1qW7n3XQ2r5yJ8zP0aBcDeFgHiJkL";

/// `(path, text)` of every block the README marks `<!-- rbac: path -->`.
fn readme_blocks() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(repo().join("README.md")).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for (at, _) in readme.match_indices("<!-- rbac: ") {
        let rest = &readme[at + "<!-- rbac: ".len()..];
        let path = rest.split(" -->").next().unwrap_or("").to_string();
        let fence = rest
            .find("```")
            .unwrap_or_else(|| panic!("no block after {path}"));
        let body = &rest[fence..];
        let start = body.find('\n').map_or(0, |n| n + 1);
        let end = body[start..]
            .find("```")
            .unwrap_or_else(|| panic!("{path}: open block"));
        out.push((path, body[start..start + end].to_string()));
    }
    out
}

fn run(db: &TestDb, args: &[&str]) -> Run {
    Run::from(
        db.cmd()
            .args(args)
            .env("ADMIN_EMAIL", "ops@example.com")
            .env(
                "ADMIN_PASSWORD_HASH_FILE",
                db.work.join("admin_password_hash"),
            )
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn the_readme_rbac_example_seeds_twice_with_no_change_and_the_app_inserts_after_it() {
    let db = TestDb::new("seed_rbac_readme");
    let blocks = readme_blocks();
    assert_eq!(blocks.len(), 6, "{blocks:?}");
    for (path, text) in &blocks {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        write(&db.work.join(dir), name, text);
    }
    std::fs::write(db.work.join("admin_password_hash"), format!("{HASH}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let first = run(&db, &["run"]);
    first.expect(0);
    assert!(first.stderr.contains("5 seed(s) run"), "{}", first.stderr);
    let tables = [
        "organizations",
        "roles",
        "permissions",
        "role_permissions",
        "users",
    ];
    let dump = data_dump(&db, &tables);
    let xmin = "SELECT string_agg(xmin::text, ',' ORDER BY tableoid, ctid) FROM \
                (SELECT tableoid, ctid, xmin FROM roles UNION ALL SELECT tableoid, ctid, xmin FROM permissions \
                 UNION ALL SELECT tableoid, ctid, xmin FROM role_permissions UNION ALL SELECT tableoid, ctid, xmin FROM users \
                 UNION ALL SELECT tableoid, ctid, xmin FROM organizations) x";
    let rows = db.sql(xmin);
    assert_eq!(
        db.sql("SELECT string_agg(r.name || ':' || p.code, ',' ORDER BY r.id, p.code) FROM role_permissions rp \
                JOIN roles r ON r.id = rp.role_id JOIN permissions p ON p.id = rp.permission_id"),
        "admin:billing.read,admin:billing.write,admin:users.read,admin:users.write,\
         member:billing.read,member:users.read,viewer:users.read"
    );
    let admin = format!(
        "SELECT u.email || '|' || (u.password_hash = $q${HASH}$q$) || '|' || r.name || '|' || o.slug \
         FROM users u JOIN roles r ON r.id = u.role_id JOIN organizations o ON o.id = u.organization_id"
    );
    assert_eq!(db.sql(&admin), "ops@example.com|true|admin|default");

    // A later start of the same release: every seed runs again and changes nothing.
    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
    let second = run(&db, &["run"]);
    second.expect(0);
    assert!(second.stderr.contains("5 seed(s) run"), "{}", second.stderr);
    assert_eq!(
        data_dump(&db, &tables),
        dump,
        "the second run changed data or drew ids"
    );
    assert_eq!(db.sql(xmin), rows, "the second run rewrote rows");

    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
    // Online validate prepares every seed, lookups and values included, against the tables.
    run(&db, &["validate"]).expect(0);
    let plan = run(&db, &["plan"]);
    plan.expect(0);
    assert!(
        plan.stdout.contains("${ADMIN_PASSWORD_HASH}"),
        "{}",
        plan.stdout
    );
    for r in [&first, &second, &plan] {
        for out in [&r.stdout, &r.stderr] {
            assert!(!out.contains("SECRET"), "the secret leaked:\n{out}");
        }
    }

    // The application's own inserts, after the pinned role ids and the seeded admin.
    assert_eq!(
        db.sql("INSERT INTO roles (name) VALUES ('support') RETURNING id"),
        "4"
    );
    assert_eq!(
        db.sql("INSERT INTO users (organization_id, email, password_hash, role_id) \
                VALUES ('00000000-0000-0000-0000-000000000001', 'app@example.com', 'x', 3) RETURNING id"),
        "2"
    );
    assert_eq!(
        db.sql("INSERT INTO permissions (code) VALUES ('audit.read') RETURNING id"),
        "5"
    );
}
