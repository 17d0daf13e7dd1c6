//! CLI and configuration: help, precedence (flag > env > file), `_FILE` secrets, unknown YAML
//! keys, a missing URL, and passwords kept out of the logs.

use crate::harness::{bare_cmd, Run, TestDb, BIN, PASSWORD};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("db-init-cfg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("migrations")).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn help_lists_every_command() {
    let run = Run::from(
        std::process::Command::new(BIN)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(0);
    for cmd in [
        "run", "wait", "migrate", "seed", "status", "validate", "baseline", "plan", "trace", "new",
    ] {
        assert!(
            run.stdout.contains(&format!("  {cmd} ")),
            "--help lacks {cmd}:\n{}",
            run.stdout
        );
        let sub = Run::from(
            std::process::Command::new(BIN)
                .args([cmd, "--help"])
                .output()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        sub.expect(0);
        assert!(
            sub.stdout.contains("--wait-timeout"),
            "{cmd} --help lacks the settings"
        );
    }
}

fn resolved_wait_timeout(dir: &std::path::Path, flag: Option<&str>, env: Option<&str>) -> String {
    let mut cmd = bare_cmd(dir);
    cmd.args(["validate", "--offline", "--log-level", "debug"]);
    if let Some(f) = flag {
        cmd.args(["--wait-timeout", f]);
    }
    if let Some(e) = env {
        cmd.env("DB_INIT_WAIT_TIMEOUT", e);
    }
    let run = Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}")));
    run.expect(0);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("configuration:"))
        .unwrap_or_else(|| panic!("{}", run.stderr))
        .to_string();
    let at = line
        .find("wait_timeout: ")
        .map(|i| i + "wait_timeout: ".len())
        .unwrap_or(0);
    line[at..].split(',').next().unwrap_or("").to_string()
}

#[test]
fn flag_beats_env_beats_file() {
    let dir = scratch("precedence");
    std::fs::write(dir.join("db-init.yaml"), "wait_timeout: 7s\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resolved_wait_timeout(&dir, Some("9s"), Some("8s")), "9s");
    assert_eq!(resolved_wait_timeout(&dir, None, Some("8s")), "8s");
    assert_eq!(resolved_wait_timeout(&dir, None, None), "7s");
    std::fs::remove_file(dir.join("db-init.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resolved_wait_timeout(&dir, None, None), "120s");
}

#[test]
fn unknown_yaml_key_is_named() {
    let dir = scratch("unknown");
    std::fs::write(dir.join("db-init.yaml"), "wait_timout: 7s\n").unwrap_or_else(|e| panic!("{e}"));
    let run = Run::from(
        bare_cmd(&dir)
            .args(["validate", "--offline"])
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(2);
    assert!(
        run.stderr.contains("unknown key `wait_timout`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `wait_timeout`"),
        "{}",
        run.stderr
    );
}

#[test]
fn invalid_value_names_setting_and_source() {
    let dir = scratch("invalid");
    let run = Run::from(
        bare_cmd(&dir)
            .args(["validate", "--offline"])
            .env("DB_INIT_LOCK_TIMEOUT", "soon")
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(2);
    assert!(
        run.stderr.contains("lock_timeout") && run.stderr.contains("DB_INIT_LOCK_TIMEOUT"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_url_is_exit_2_naming_the_variables() {
    let dir = scratch("nourl");
    let run = Run::from(
        bare_cmd(&dir)
            .arg("wait")
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(2);
    assert!(
        run.stderr.contains("DATABASE_URL") && run.stderr.contains("DIRECT_URL"),
        "{}",
        run.stderr
    );
}

#[test]
fn url_from_a_secret_file() {
    let db = TestDb::new("secret_file");
    let secret = db.work.join("database-url");
    std::fs::write(&secret, format!("{}\n", db.url())).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = db.cmd();
    cmd.env_remove("DB_INIT_DATABASE_URL")
        .env("DATABASE_URL_FILE", &secret)
        .arg("wait");
    Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}"))).expect(0);
    // DIRECT_URL (the unpooled URL) beats DATABASE_URL.
    let mut cmd = db.cmd();
    cmd.env_remove("DB_INIT_DATABASE_URL")
        .env("DIRECT_URL_FILE", &secret)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["wait", "--wait-timeout", "2s"]);
    Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}"))).expect(0);
    // Both forms of one variable: ambiguous, refused.
    let mut cmd = db.cmd();
    cmd.env_remove("DB_INIT_DATABASE_URL")
        .env("DATABASE_URL_FILE", &secret)
        .env("DATABASE_URL", db.url())
        .arg("wait");
    let run = Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}")));
    run.expect(2);
    assert!(run.stderr.contains("DATABASE_URL_FILE"), "{}", run.stderr);
}

#[test]
fn passwords_never_reach_the_logs() {
    let db = TestDb::new("redaction");
    std::fs::create_dir_all(db.work.join("migrations")).unwrap_or_else(|e| panic!("{e}"));
    // Success at the most verbose level, then an authentication failure that prints the URL.
    let ok = db.run(&["run", "--log-level", "trace"]);
    ok.expect(0);
    let bad_url = db.url().replace(PASSWORD, "Wr0ng-Secret-9");
    let bad = db.run(&[
        "wait",
        "--log-level",
        "trace",
        "--log-format",
        "json",
        "--database-url",
        &bad_url,
    ]);
    bad.expect(4);
    for (run, secret) in [(&ok, PASSWORD), (&bad, "Wr0ng-Secret-9")] {
        assert!(
            !run.stderr.contains(secret),
            "password leaked:\n{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains(secret),
            "password leaked:\n{}",
            run.stdout
        );
    }
    assert!(
        ok.stderr.contains(":***@"),
        "the redacted URL should be logged:\n{}",
        ok.stderr
    );
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> Run {
    Run::from(
        bare_cmd(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn bad_settings_are_exit_2_naming_the_setting_never_a_panic_or_a_hang() {
    let dir = scratch("ranges");
    let url = ["--database-url", "postgres://u@127.0.0.1:1/db"];
    for (args, setting) in [
        (&["--log-level", "eror"][..], "log_level"),
        (
            &["--wait-timeout", "10000000000000000000"][..],
            "wait_timeout",
        ),
        (
            &["--statement-timeout", "3000000s"][..],
            "statement_timeout",
        ),
        (&["--ddl-lock-timeout", "3000000s"][..], "ddl_lock_timeout"),
        (
            &["--retry-initial", "0", "--retry-max", "0"][..],
            "retry_initial",
        ),
        (
            &["--retry-initial", "2s", "--retry-max", "1s"][..],
            "retry_max",
        ),
        (&["--connect-timeout", "0"][..], "connect_timeout"),
    ] {
        let mut all = vec!["wait"];
        all.extend_from_slice(&url);
        all.extend_from_slice(args);
        let run = run_in(&dir, &all);
        run.expect(2);
        assert!(run.stderr.contains(setting), "{args:?}: {}", run.stderr);
    }
    for bad in ["", "postgres://", "postgres://:@:/"] {
        let started = std::time::Instant::now();
        let run = run_in(
            &dir,
            &["wait", "--database-url", bad, "--wait-timeout", "30s"],
        );
        run.expect(2);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{bad:?} waited"
        );
        assert!(run.stderr.contains("no host"), "{bad:?}: {}", run.stderr);
    }
}

#[test]
fn configuration_errors_reach_the_termination_log() {
    let dir = scratch("termlog");
    let log = dir.join("termination-log");
    std::fs::write(&log, "").unwrap_or_else(|e| panic!("{e}"));
    let path = log.display().to_string();
    run_in(
        &dir,
        &["wait", "--termination-log", &path, "--wait-timeout", "soon"],
    )
    .expect(2);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("wait_timeout"), "{text:?}");
}

#[test]
fn a_version_too_large_for_64_bits_is_named_as_such() {
    let dir = scratch("bigversion");
    std::fs::write(
        dir.join("migrations/99999999999999999999_big.sql"),
        "SELECT 1;",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = run_in(&dir, &["validate", "--offline"]);
    run.expect(7);
    assert!(
        run.stderr.contains("larger than 9223372036854775807"),
        "{}",
        run.stderr
    );
}
