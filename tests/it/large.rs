//! A statement over a megabyte goes to the server from the migration file's text (no extra
//! copies), over TCP, TLS and a Unix socket, in a transaction and outside one, whole, and an
//! error in it keeps its line and column.

use crate::harness::{bare_cmd, write, Cluster, Run, PASSWORD};

/// `CREATE TABLE <t> AS SELECT length('xxx…') AS n`, `len` x's long.
fn big_statement(table: &str, len: usize) -> String {
    format!(
        "CREATE TABLE {table} AS SELECT length('{}') AS n;\n",
        "x".repeat(len)
    )
}

#[test]
fn a_large_statement_is_sent_whole_over_tcp_tls_and_a_unix_socket() {
    let cluster = Cluster::init("large", true).unwrap_or_else(|e| panic!("{e}"));
    cluster.start().unwrap_or_else(|e| panic!("{e}"));
    let work = std::env::temp_dir().join(format!("db-init-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let dir = work.join("migrations");
    // Over the 4 MiB segment size, so the statement is a query alone.
    const LEN: usize = 5 << 20;
    write(&dir, "0001_in_tx.sql", &big_statement("in_tx", LEN));
    // CONCURRENTLY makes the file run statement by statement, outside a transaction.
    let outside = format!(
        "{}CREATE INDEX CONCURRENTLY outside_n ON outside (n);\n",
        big_statement("outside", LEN + 1)
    );
    write(&dir, "0002_outside.sql", &outside);
    let ca = cluster.dir.join("ca.crt").display().to_string();
    let transports = [
        (
            "tcp",
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/tcp?sslmode=disable", cluster.port),
        ),
        (
            "tls",
            format!(
                "postgres://postgres:{PASSWORD}@localhost:{}/tls?sslmode=verify-full&sslrootcert={ca}",
                cluster.port
            ),
        ),
        (
            "unix",
            format!(
                "postgres://postgres:{PASSWORD}@/unix?host={}&port={}",
                cluster.dir.display(),
                cluster.port
            ),
        ),
    ];
    let server = cluster.server();
    let mut results = Vec::new();
    for (name, url) in &transports {
        let created = server.psql("postgres", &format!("CREATE DATABASE {name}"));
        let run = Run::from(
            bare_cmd(&work)
                .args(["migrate", "--seeds", "./none", "--database-url", url])
                .env("DB_INIT_LOG_LEVEL", "debug")
                .output()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let rows = server.psql(
            name,
            "SELECT (SELECT n FROM in_tx) || ' ' || (SELECT n FROM outside)",
        );
        results.push((name, created, run, rows));
    }
    cluster.stop();
    for (name, created, run, rows) in results {
        created.unwrap_or_else(|e| panic!("{e}"));
        run.expect(0);
        let spliced = run
            .stderr
            .matches("large statement written from the file's text")
            .filter(|_| run.stderr.contains("sent=true"))
            .count();
        assert_eq!(
            spliced, 2,
            "{name}: both statements by reference\n{}",
            run.stderr
        );
        assert_eq!(
            rows.as_deref(),
            Ok(format!("{LEN} {}", LEN + 1).as_str()),
            "{name}"
        );
    }
}

#[test]
fn an_error_at_the_end_of_a_large_statement_keeps_its_line_and_column() {
    let db = crate::harness::TestDb::new("large_error");
    let sql = format!(
        "CREATE TABLE t (id int);\n-- a large one\nINSERT INTO t SELECT length('{}') +\n  no_such_column;\n",
        "x".repeat(2 << 20)
    );
    write(&db.work.join("migrations"), "0001_big.sql", &sql);
    let run = db.run(&["migrate", "--seeds", "./none"]);
    run.expect(6);
    assert!(
        run.stderr.contains("0001_big.sql:4:3"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        run.stderr.contains("42703"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert_eq!(db.sql("SELECT to_regclass('t') IS NULL"), "t");
}
