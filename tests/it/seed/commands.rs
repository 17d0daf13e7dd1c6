//! Command seeds: an executable `*.sh` run under the lock after the SQL and YAML seeds of its
//! folder, with DATABASE_URL and the libpq variables, its output in db-init's log (the password
//! never), bounded in time (its process group killed), a failure exit 8 with its last lines,
//! `seed_mode: on-change` by its checksum; a real node script while a second replica waits.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::harness::{server, wait_until, write, Run, TestDb, PASSWORD};

fn executable(dir: &std::path::Path, name: &str, text: &str) {
    write(dir, name, text);
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
}

const RBAC_JS: &str = r#"
const { execFileSync } = require('child_process');
const fs = require('fs');
const url = new URL(process.env.DATABASE_URL);
console.log(`db ${url.pathname.slice(1)} on ${url.hostname}:${url.port} as ${url.username}`);
console.log(`url ${process.env.DATABASE_URL}`);
console.error(`libpq ${process.env.PGHOST}:${process.env.PGPORT}/${process.env.PGDATABASE} ${process.env.PGUSER}`);
// Waits for the test's go, so that a second replica meets the lock meanwhile.
fs.writeFileSync(process.env.GO_FILE + '.started', '');
const t0 = Date.now();
while (!fs.existsSync(process.env.GO_FILE)) {
  if (Date.now() - t0 > 60000) process.exit(5);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
}
const psql = (args, env) =>
  execFileSync(process.env.PSQL, ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args], { env }).toString().trim();
psql(['-c', "INSERT INTO log (what) VALUES ('node via PG*')"], process.env);
psql([process.env.DATABASE_URL, '-c', "INSERT INTO log (what) VALUES ('node via url')"], { PATH: process.env.PATH });
console.log('advisory locks held: ' + psql(['-c', "SELECT string_agg(DISTINCT l.mode || ' by ' || a.application_name, ',') FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND l.objid = 4115495741 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"], process.env));
"#;

fn spawn(db: &TestDb, go: &std::path::Path) -> Child {
    db.cmd()
        .arg("run")
        .env("PSQL", server().bin.join("psql"))
        .env("GO_FILE", go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn db_init_sessions(db: &TestDb) -> String {
    db.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'db-init' AND datname = current_database()")
}

#[test]
fn a_node_script_runs_under_the_lock_while_a_second_replica_waits() {
    let db = TestDb::new("seed_command_node");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE log (n serial PRIMARY KEY, what text);\n",
    );
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "10_first.sql",
        "INSERT INTO log (what) VALUES ('sql');\n",
    );
    executable(
        &seeds,
        "50_rbac.sh",
        "#!/bin/sh\nexec node \"$(dirname \"$0\")/rbac.js\"\n",
    );
    write(&seeds, "rbac.js", RBAC_JS);
    // A later file name, but SQL: it runs before the folder's commands.
    write(
        &seeds,
        "90_late.sql",
        "INSERT INTO log (what) VALUES ('late');\n",
    );
    let go = db.work.join("go");
    let first = spawn(&db, &go);
    wait_until("the node script to start", Duration::from_secs(30), || {
        db.work.join("go.started").exists()
    });
    let mut second = spawn(&db, &go);
    wait_until(
        "the second replica to connect",
        Duration::from_secs(30),
        || db_init_sessions(&db) == "2",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        matches!(second.try_wait(), Ok(None)),
        "the second replica did not wait"
    );
    assert_eq!(
        db.sql("SELECT string_agg(what, ',' ORDER BY n) FROM log"),
        "sql,late"
    );
    std::fs::write(&go, "").unwrap_or_else(|e| panic!("{e}"));
    let first = Run::from(first.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    let second = Run::from(second.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    first.expect(0);
    second.expect(0);
    assert_eq!(
        db.sql("SELECT string_agg(what, ',' ORDER BY n) FROM log"),
        "sql,late,node via PG*,node via url"
    );
    let s = server();
    for want in [
        format!("db {} on {}:{} as postgres", db.name, s.host, s.port),
        "url postgresql://postgres:***@".to_string(),
        format!("libpq {}:{}/{} postgres", s.host, s.port, db.name),
        // db-init's key (its low 32 bits), held exclusively by db-init's session.
        "advisory locks held: ExclusiveLock by db-init seed=".to_string(),
        "seed=50_rbac.sh".to_string(),
    ] {
        assert!(first.stderr.contains(&want), "{want}\n{}", first.stderr);
    }
    assert!(
        second.stderr.contains("0 seed(s) run")
            || second.stderr.contains("seed=50_rbac.sh skipped"),
        "{}",
        second.stderr
    );
    for out in [&first.stderr, &first.stdout, &second.stderr] {
        assert!(!out.contains(PASSWORD), "the password leaked:\n{out}");
    }
    assert_eq!(
        db.sql("SELECT string_agg(name, ',' ORDER BY name) FROM db_init.seed_runs"),
        "10_first.sql,50_rbac.sh,90_late.sql"
    );
}

fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn a_failing_or_slow_command_is_exit_8_and_on_change_goes_by_its_checksum() {
    let db = TestDb::new("seed_command_fail");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    let seeds = db.work.join("seeds");
    executable(
        &seeds,
        "fail.sh",
        "#!/bin/sh\nfor i in $(seq 1 30); do echo \"line $i\"; done\nsleep 0.3\necho oops >&2\nexit 3\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    let error = run.stderr.split("ERROR").nth(1).unwrap_or("");
    assert!(
        error.contains("fail.sh: the command failed (exit status: 3)")
            && error.contains("    line 12\n")
            && error.contains("    oops\n")
            && !error.contains("    line 11\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("line 1 seed=fail.sh stream=\"stdout\"")
            || run.stderr.contains("line 1"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT count(*) FROM db_init.seed_runs"), "0");

    // At the time bound its whole process group is killed.
    std::fs::remove_file(seeds.join("fail.sh")).unwrap_or_else(|e| panic!("{e}"));
    let pids = db.work.join("pids");
    executable(
        &seeds,
        "slow.sh",
        &format!(
            "#!/bin/sh\necho $$ > {0}\nsleep 300 &\necho $! >> {0}\nwait\n",
            pids.display()
        ),
    );
    let started = std::time::Instant::now();
    let run = db.run(&["run", "--seed-command-timeout", "1s"]);
    run.expect(8);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        run.stderr
            .contains("slow.sh: the command did not finish within seed_command_timeout (1s)"),
        "{}",
        run.stderr
    );
    let pids = std::fs::read_to_string(&pids).unwrap_or_else(|e| panic!("{e}"));
    for pid in pids.lines() {
        wait_until(
            "the command's processes to end",
            Duration::from_secs(5),
            || gone(pid),
        );
    }

    // on-change: by the file's checksum; a file that is not executable is not a command seed.
    std::fs::remove_file(seeds.join("slow.sh")).unwrap_or_else(|e| panic!("{e}"));
    executable(&seeds, "ok.sh", "#!/bin/sh\necho ran >> ran\n");
    write(&seeds, "not_a_seed.sh", "#!/bin/sh\necho ran >> ran\n");
    let on_change = ["run", "--seed-mode", "on-change"];
    let first = db.run(&on_change);
    first.expect(0);
    assert!(
        first.stderr.contains("not_a_seed.sh: not executable"),
        "{}",
        first.stderr
    );
    db.run(&on_change).expect(0);
    let ran = || std::fs::read_to_string(db.work.join("ran")).unwrap_or_default();
    assert_eq!(ran(), "ran\n");
    executable(&seeds, "ok.sh", "#!/bin/sh\necho ran again >> ran\n");
    db.run(&on_change).expect(0);
    assert_eq!(ran(), "ran\nran again\n");
}

/// Over a Unix socket: DATABASE_URL carries the socket directory in `host=`, PGHOST the
/// directory itself; psql connects with each.
#[test]
fn a_command_seed_reaches_the_database_over_a_unix_socket() {
    let db = TestDb::new("seed_command_socket");
    let s = server();
    let Some(dir) = s.server_dir() else {
        return; // a server from DB_INIT_TEST_DATABASE_URL: no socket of ours
    };
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE log (n serial PRIMARY KEY, what text, via text);\n",
    );
    executable(
        &db.work.join("seeds"),
        "via.sh",
        "#!/bin/sh\nset -e\n\"$PSQL\" -X \"$DATABASE_URL\" -c \"INSERT INTO log (what, via) VALUES ('url', inet_server_addr()::text)\"\n\
         env -u DATABASE_URL \"$PSQL\" -X -c \"INSERT INTO log (what, via) VALUES ('libpq', '$PGHOST')\"\n",
    );
    let url = format!(
        "postgres://{}:{}@/{}?host={}&port={}",
        s.user,
        s.password,
        db.name,
        dir.display(),
        s.port
    );
    let run = Run::from(
        db.cmd()
            .arg("run")
            .env("DB_INIT_DATABASE_URL", &url)
            .env("PSQL", s.bin.join("psql"))
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(0);
    assert_eq!(
        db.sql(
            "SELECT string_agg(what || '=' || coalesce(via, 'socket'), ',' ORDER BY n) FROM log"
        ),
        format!("url=socket,libpq={}", dir.display())
    );
    // plan names the command it would run.
    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
    let plan = Run::from(
        db.cmd()
            .arg("plan")
            .env("DB_INIT_DATABASE_URL", &url)
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    plan.expect(0);
    assert!(
        plan.stdout
            .contains("-- seed via.sh\n-- runs the command ./seeds/via.sh"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

/// SIGTERM while a command seed runs: db-init exits 143 and takes the command's process group
/// with it; nothing is recorded.
#[test]
fn sigterm_during_a_command_seed_kills_its_process_group() {
    let db = TestDb::new("seed_command_sigterm");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    let pids = db.work.join("pids");
    executable(
        &db.work.join("seeds"),
        "slow.sh",
        &format!(
            "#!/bin/sh\nsleep 300 &\necho $! > {0}.tmp\necho $$ >> {0}.tmp\nmv {0}.tmp {0}\nwait\n",
            pids.display()
        ),
    );
    let child = db
        .cmd()
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until("the command to start", Duration::from_secs(30), || {
        pids.exists()
    });
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok);
    let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    run.expect(143);
    let pids = std::fs::read_to_string(&pids).unwrap_or_else(|e| panic!("{e}"));
    for pid in pids.lines() {
        wait_until(
            "the command's processes to end",
            Duration::from_secs(5),
            || gone(pid),
        );
    }
    assert_eq!(db.sql("SELECT count(*) FROM db_init.seed_runs"), "0");
}

/// Over many databases each command seed is handed the database its session is on.
#[test]
fn over_many_databases_each_command_seed_reaches_its_own_database() {
    let db = TestDb::new("seed_command_many");
    let other = TestDb::new("seed_command_many_b");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE log (what text);\n",
    );
    executable(
        &db.work.join("seeds"),
        "50_where.sh",
        "#!/bin/sh\nexec \"$PSQL\" -X -q -c \"INSERT INTO log VALUES (current_database() || ' ' || '$PGDATABASE')\"\n",
    );
    write(
        &db.work,
        "databases.txt",
        &format!("{}\n{}\n", db.name, other.name),
    );
    let run = Run::from(
        db.cmd()
            .args(["run", "--databases-file", "databases.txt"])
            .env("PSQL", server().bin.join("psql"))
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(0);
    for d in [&db, &other] {
        assert_eq!(
            d.sql("SELECT string_agg(what, ',') FROM log"),
            format!("{0} {0}", d.name),
            "{}",
            run.stderr
        );
    }
}

/// A command longer than the server lets a session idle (`idle_session_timeout`, or a NAT
/// that drops idle connections): db-init's session, which holds the lock, is kept busy, so the
/// lock is not lost under the command and its run is recorded.
#[test]
fn the_lock_session_stays_alive_while_a_long_command_runs() {
    let db = TestDb::new("seed_command_idle");
    db.sql(&format!(
        "ALTER DATABASE {} SET idle_session_timeout = '1500ms'",
        db.name
    ));
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    executable(&db.work.join("seeds"), "50_long.sh", "#!/bin/sh\nsleep 4\n");
    let run = db.run(&["run"]);
    run.expect(0);
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.seed_runs WHERE name = '50_long.sh'"),
        "1"
    );
}

/// The excerpt of a failed command ends with what it wrote last, on stdout or stderr: one pipe
/// keeps the command's own order.
#[test]
fn a_failed_commands_excerpt_ends_with_its_last_words_on_either_stream() {
    let db = TestDb::new("seed_command_order");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    executable(
        &db.work.join("seeds"),
        "55_order.sh",
        "#!/bin/sh\ni=1\nwhile [ $i -le 60 ]; do echo progress $i; i=$((i+1)); done\necho 'Error: boom at rbac.ts:12' >&2\nexit 1\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    let excerpt = run
        .stderr
        .split("its last lines of output:")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let last = excerpt
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| !l.contains("exit_code="))
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.starts_with("Error: boom at rbac.ts:12") && excerpt.contains("progress 60"),
        "{}",
        run.stderr
    );
}

/// db-init killed with SIGKILL mid-command: the kernel kills the command too, so it does not go
/// on without the lock while another replica starts it again.
#[test]
fn a_command_does_not_outlive_a_killed_db_init() {
    let db = TestDb::new("seed_command_kill9");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    let marker = db.work.join("started");
    executable(
        &db.work.join("seeds"),
        "60_long.sh",
        &format!(
            "#!/bin/sh\ntouch {}\nexec sleep 47.{}\n",
            marker.display(),
            std::process::id()
        ),
    );
    let mut child = db
        .cmd()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until("the command to start", Duration::from_secs(30), || {
        marker.exists() && running(&format!("sleep 47.{}", std::process::id()))
    });
    let _ = child.kill();
    let _ = child.wait();
    let pattern = format!("sleep 47.{}", std::process::id());
    wait_until(
        "the command to be killed with db-init",
        Duration::from_secs(5),
        || !running(&pattern),
    );
}

/// Whether a process whose command line holds `pattern` is running (read from /proc).
fn running(pattern: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        panic!("no /proc");
    };
    entries.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(pattern)
            })
            .unwrap_or(false)
    })
}
