//! deploy/compose.yaml, run for real (SPEC section 8): docker-compose 1.29.2 against podman's
//! Docker-compatible API, with images built on this machine (scripts/compose/setup.sh installs
//! and builds everything; scripts/compose/env.sh says where it lives).
//!
//! The file under test is the repository's deploy/compose.yaml itself: the images come from its
//! POSTGRES_IMAGE, DB_INIT_IMAGE and WEB_IMAGE variables, and `--project-directory` points its
//! `../migrations` and `../seeds` at a temporary copy, so a scenario can bring migrations of its
//! own. Each scenario has a docker-compose project of its own; everything is removed at the end,
//! also when an assertion fails, and the podman service is stopped.
//!
//! Run by .ci/run after `bash scripts/compose/setup.sh`:
//!   cargo test --locked --test it compose -- --ignored
//! Without its prerequisites the test fails: it never passes without having run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Bounds every command the test runs: `timeout` sends SIGTERM, then SIGKILL 5 s later.
fn bounded(limit: Duration, program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["-k", "5", &limit.as_secs().to_string(), program]);
    c
}

/// `scripts/compose/run.sh COMMAND...`: the command with the Compose test's settings.
fn with_env(limit: Duration) -> Command {
    let mut c = bounded(limit, "bash");
    c.arg(repo().join("scripts/compose/run.sh"));
    // The images are the test's (env.sh), the URL is the compose file's unless a scenario sets it.
    for var in [
        "POSTGRES_IMAGE",
        "DB_INIT_IMAGE",
        "WEB_IMAGE",
        "DATABASE_URL",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn podman(args: &[&str]) -> Output {
    let mut c = with_env(Duration::from_secs(60));
    c.arg("podman").args(args);
    run(c)
}

/// Polls `done` every 200 ms until it holds; panics with `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops the podman service (and its healthcheck runner) when the test ends, however it ends.
struct Service;

impl Service {
    /// Installs nothing: checks the tools, builds the static binary (scripts/build-static.sh),
    /// starts the service and builds the images.
    fn start() -> Service {
        let mut c = bounded(Duration::from_secs(1200), "bash");
        c.arg(repo().join("scripts/compose/setup.sh"))
            .arg("--no-install");
        for var in ["POSTGRES_IMAGE", "DB_INIT_IMAGE", "WEB_IMAGE"] {
            c.env_remove(var);
        }
        crate::harness::without_cargo_test_env(&mut c);
        let started = Instant::now();
        let out = run(c);
        let service = Service;
        assert!(
            out.status.success(),
            "the Compose test's prerequisites are missing (run `bash scripts/compose/setup.sh` first; \
             it needs root, podman, runc and docker-compose 1.29.2):\n{}",
            text(&out)
        );
        eprintln!(
            "compose: binary, podman service and images ready in {:?}",
            started.elapsed()
        );
        service
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let mut c = bounded(Duration::from_secs(30), "bash");
        c.arg(repo().join("scripts/compose/service.sh")).arg("stop");
        let _ = c.stdin(Stdio::null()).output();
    }
}

/// One docker-compose project: deploy/compose.yaml with `../migrations` and `../seeds` in a
/// temporary directory. Dropping it removes its containers, network and volume, and the directory.
struct Stack {
    project: String,
    dir: PathBuf,
    database_url: Option<String>,
}

impl Stack {
    fn new(name: &str, migrations: &Path, seeds: &Path) -> Stack {
        let project = format!("dbinitcompose{}{name}", std::process::id());
        let dir = std::env::temp_dir().join(&project);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("deploy")).unwrap_or_else(|e| panic!("{e}"));
        copy_dir(migrations, &dir.join("migrations"));
        copy_dir(seeds, &dir.join("seeds"));
        Stack {
            project,
            dir,
            database_url: None,
        }
    }

    fn compose_command(&self, limit: Duration, args: &[&str]) -> Command {
        let mut c = with_env(limit);
        c.args([
            "docker-compose",
            "--no-ansi",
            "-p",
            &self.project,
            "--project-directory",
        ])
        .arg(self.dir.join("deploy"))
        .arg("-f")
        .arg(repo().join("deploy/compose.yaml"))
        .args(args);
        if let Some(url) = &self.database_url {
            c.env("DATABASE_URL", url);
        }
        c
    }

    fn compose(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = run(self.compose_command(Duration::from_secs(180), args));
        eprintln!(
            "compose: {} {}: {:?} in {:?}",
            self.project,
            args.join(" "),
            out.status.code(),
            started.elapsed()
        );
        out
    }

    fn compose_ok(&self, args: &[&str]) {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {} failed:\n{}\n{}",
            args.join(" "),
            text(&out),
            self.describe()
        );
    }

    /// The id of the service's container, if it exists.
    fn container(&self, service: &str) -> Option<String> {
        let out = podman(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.ID}}",
        ]);
        assert!(out.status.success(), "podman ps: {}", text(&out));
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert!(
            ids.len() <= 1,
            "{service}: more than one container: {ids:?}"
        );
        ids.into_iter().next()
    }

    fn must(&self, service: &str) -> String {
        self.container(service).unwrap_or_else(|| {
            panic!(
                "{}: no {service} container\n{}",
                self.project,
                self.describe()
            )
        })
    }

    fn inspect(&self, service: &str, format: &str) -> String {
        let out = podman(&["inspect", "--format", format, &self.must(service)]);
        assert!(out.status.success(), "podman inspect: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn nanos(&self, service: &str, field: &str) -> i128 {
        let v = self.inspect(service, &format!("{{{{.State.{field}.UnixNano}}}}"));
        v.parse()
            .unwrap_or_else(|_| panic!("{service} {field}: {v:?}"))
    }

    fn exit_code(&self, service: &str) -> i32 {
        let v = self.inspect(service, "{{.State.ExitCode}}");
        v.parse()
            .unwrap_or_else(|_| panic!("{service} exit code: {v:?}"))
    }

    fn status(&self, service: &str) -> String {
        self.inspect(service, "{{.State.Status}}")
    }

    fn logs(&self, service: &str) -> String {
        text(&podman(&["logs", &self.must(service)]))
    }

    fn psql(&self, sql: &str) -> String {
        let out = podman(&[
            "exec",
            &self.must("postgres"),
            "psql",
            "-U",
            "postgres",
            "-d",
            "app",
            "-tAc",
            sql,
        ]);
        assert!(out.status.success(), "psql {sql}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Containers and their logs, for assertion messages.
    fn describe(&self) -> String {
        let mut s = String::new();
        for service in ["postgres", "db-init", "web"] {
            if let Some(id) = self.container(service) {
                let state = text(&podman(&[
                    "inspect",
                    "--format",
                    "{{.State.Status}} exit {{.State.ExitCode}}",
                    &id,
                ]));
                let logs = text(&podman(&["logs", "--tail", "20", &id]));
                s.push_str(&format!("--- {service}: {}\n{logs}\n", state.trim()));
            } else {
                s.push_str(&format!("--- {service}: no container\n"));
            }
        }
        s
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let mut c = self.compose_command(
            Duration::from_secs(120),
            &["down", "-v", "-t", "2", "--remove-orphans"],
        );
        let _ = c.stdin(Stdio::null()).output();
        // Whatever docker-compose left (e.g. when it was itself the thing that failed).
        let label = format!("label=com.docker.compose.project={}", self.project);
        let ids = podman(&["ps", "-aq", "--filter", &label]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = podman(&["rm", "-f", "-v", id]);
        }
        let _ = podman(&["volume", "rm", "-f", &format!("{}_pgdata", self.project)]);
        let _ = podman(&["network", "rm", "-f", &format!("{}_default", self.project)]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn sample() -> (PathBuf, PathBuf) {
    (repo().join("migrations"), repo().join("seeds"))
}

/// 1. `up`: db-init migrates and exits 0, and web starts only after that.
/// 2. `down` and `up` again: the data is still there (named volume) and db-init has nothing to do.
fn up_migrates_then_starts_web_and_a_second_up_has_nothing_to_do() {
    let (migrations, seeds) = sample();
    let stack = Stack::new("up", &migrations, &seeds);
    stack.compose_ok(&["up", "-d"]);
    assert_eq!(stack.exit_code("db-init"), 0, "{}", stack.describe());
    let finished = stack.nanos("db-init", "FinishedAt");
    let web_started = stack.nanos("web", "StartedAt");
    eprintln!(
        "compose: web started {:.3} s after db-init exited",
        (web_started - finished) as f64 / 1e9
    );
    assert!(
        web_started > finished,
        "web started before db-init finished\n{}",
        stack.describe()
    );
    assert!(
        stack.nanos("db-init", "StartedAt") > stack.nanos("postgres", "StartedAt"),
        "db-init started before postgres"
    );
    let log = stack.logs("db-init");
    assert!(
        log.contains("done: 3 migration(s) applied, 0 already applied, 4 seed(s) run"),
        "db-init log:\n{log}"
    );
    // The stand-in web app (`db-init wait`) records that it ran and found the database ready.
    wait_for("web to exit", Duration::from_secs(30), || {
        stack.status("web") == "exited"
    });
    assert_eq!(stack.exit_code("web"), 0, "{}", stack.describe());
    assert!(
        stack.logs("web").contains("connected to"),
        "{}",
        stack.describe()
    );
    assert_eq!(stack.psql("SELECT count(*) FROM roles"), "4");
    stack.psql("CREATE TABLE compose_marker AS SELECT 'still here' AS note");

    stack.compose_ok(&["down"]);
    assert!(stack.container("postgres").is_none(), "down left postgres");
    stack.compose_ok(&["up", "-d"]);
    assert_eq!(stack.exit_code("db-init"), 0, "{}", stack.describe());
    let log = stack.logs("db-init");
    assert!(
        log.contains("done: 0 migration(s) applied, 3 already applied"),
        "the second run had something to do:\n{log}"
    );
    assert!(
        !log.contains("INFO applied"),
        "the second run applied something:\n{log}"
    );
    assert_eq!(stack.psql("SELECT note FROM compose_marker"), "still here");
    assert_eq!(
        stack.psql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "3"
    );
    assert!(stack.nanos("web", "StartedAt") > stack.nanos("db-init", "FinishedAt"));
}

/// 3. A broken migration: db-init exits 6 and web is never created.
fn a_broken_migration_stops_the_stack_before_web() {
    let work = std::env::temp_dir().join(format!("dbinitcompose{}broken-src", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("migrations")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(work.join("seeds")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        work.join("migrations/0001_ok.sql"),
        "CREATE TABLE ok (id int);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        work.join("migrations/0002_broken.sql"),
        "CREATE TABLE broken (id int;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::new("broken", &work.join("migrations"), &work.join("seeds"));
    let _ = std::fs::remove_dir_all(&work);
    let out = stack.compose(&["up", "-d"]);
    assert!(
        !out.status.success(),
        "up succeeded with a broken migration:\n{}",
        text(&out)
    );
    assert_eq!(stack.exit_code("db-init"), 6, "{}", stack.describe());
    assert!(
        stack.container("web").is_none(),
        "web was created although db-init failed\n{}",
        stack.describe()
    );
    let log = stack.logs("db-init");
    assert!(log.contains("0002_broken.sql"), "db-init log:\n{log}");
    assert_eq!(
        stack.psql("SELECT string_agg(version::text, ',') FROM db_init.schema_migrations"),
        "1"
    );
}

/// 4. db-init started before PostgreSQL waits for it (name not found, then refused while it
///    boots) and migrates once it is up.
fn db_init_waits_while_postgres_boots() {
    let (migrations, seeds) = sample();
    let stack = Stack::new("late", &migrations, &seeds);
    stack.compose_ok(&["up", "-d", "--no-deps", "db-init"]);
    assert!(stack.container("postgres").is_none());
    wait_for(
        "db-init to log that it waits",
        Duration::from_secs(30),
        || stack.logs("db-init").contains("waiting for the database"),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stack.status("db-init"), "running", "{}", stack.describe());
    stack.compose_ok(&["up", "-d", "postgres"]);
    wait_for("db-init to exit", Duration::from_secs(90), || {
        stack.status("db-init") == "exited"
    });
    assert_eq!(stack.exit_code("db-init"), 0, "{}", stack.describe());
    assert!(stack.nanos("db-init", "StartedAt") < stack.nanos("postgres", "StartedAt"));
    let log = stack.logs("db-init");
    let waiting = log.find("waiting for the database");
    let connected = log.find("connected to");
    assert!(
        waiting.is_some() && connected.is_some() && waiting < connected,
        "expected waiting, then connecting:\n{log}"
    );
    let attempts: u32 = log
        .lines()
        .find(|l| l.contains("connected to"))
        .and_then(|l| l.split("attempts=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no attempts= in:\n{log}"));
    assert!(attempts > 1, "connected at the first attempt:\n{log}");
    assert!(
        log.contains("3 migration(s) applied"),
        "db-init log:\n{log}"
    );
    // The rest of the stack now comes up as usual.
    stack.compose_ok(&["up", "-d"]);
    assert!(stack.nanos("web", "StartedAt") > stack.nanos("db-init", "FinishedAt"));
}

/// 5. Stopping the stack while db-init waits for an unreachable database: exit 143, no web.
fn stopping_the_stack_while_db_init_waits_gives_143() {
    let (migrations, seeds) = sample();
    let mut stack = Stack::new("stop", &migrations, &seeds);
    // Nothing listens on 5433: refused, retried until wait_timeout (120 s).
    stack.database_url = Some("postgres://postgres:postgres@postgres:5433/app".into());
    // `up` blocks until db-init completes, so it runs in the background.
    let mut up = stack
        .compose_command(Duration::from_secs(180), &["up", "-d"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let up_guard = KillOnDrop(&mut up);
    wait_for(
        "db-init to wait for the database",
        Duration::from_secs(90),
        || {
            stack.container("db-init").is_some()
                && stack.logs("db-init").contains("waiting for the database")
        },
    );
    assert_eq!(stack.status("db-init"), "running", "{}", stack.describe());
    let sent = Instant::now();
    stack.compose_ok(&["stop", "-t", "10"]);
    let took = sent.elapsed();
    eprintln!("compose: stop while db-init waits took {took:?}");
    assert_eq!(
        stack.exit_code("db-init"),
        143,
        "db-init did not exit 143 on stop\n{}",
        stack.describe()
    );
    assert!(
        took < Duration::from_secs(10),
        "stop took {took:?}: db-init ignored SIGTERM"
    );
    let up = up_guard.wait(Duration::from_secs(60));
    assert!(
        !up.status.success(),
        "up succeeded although db-init was stopped:\n{}",
        text(&up)
    );
    assert!(
        stack.container("web").is_none(),
        "web was created although db-init was stopped\n{}",
        stack.describe()
    );
}

/// Kills a background docker-compose that is still running when the test leaves early.
struct KillOnDrop<'a>(&'a mut Child);

impl KillOnDrop<'_> {
    fn wait(self, limit: Duration) -> Output {
        let started = Instant::now();
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => {
                    let mut stdout = Vec::new();
                    let mut stderr = Vec::new();
                    if let Some(mut o) = self.0.stdout.take() {
                        let _ = o.read_to_end(&mut stdout);
                    }
                    if let Some(mut e) = self.0.stderr.take() {
                        let _ = e.read_to_end(&mut stderr);
                    }
                    return Output {
                        status,
                        stdout,
                        stderr,
                    };
                }
                Ok(None) if started.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Ok(None) => {
                    panic!("docker-compose up still runs {limit:?} after the stack was stopped")
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
#[ignore = "needs root, podman and docker-compose: run by .ci/run with --ignored"]
fn compose_file_runs_with_docker_compose_on_podman() {
    let started = Instant::now();
    let _service = Service::start();
    up_migrates_then_starts_web_and_a_second_up_has_nothing_to_do();
    a_broken_migration_stops_the_stack_before_web();
    db_init_waits_while_postgres_boots();
    stopping_the_stack_while_db_init_waits_gives_143();
    eprintln!("compose: all scenarios in {:?}", started.elapsed());
}
