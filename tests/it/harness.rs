//! The test harness: one real PostgreSQL server per test run (initdb + pg_ctl in a temp dir, or
//! `DB_INIT_TEST_DATABASE_URL`), a fresh database per test, and the built binary run as a process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const PASSWORD: &str = "s3cret-Pw";
pub const BIN: &str = env!("CARGO_BIN_EXE_db-init");

pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Directory of the PostgreSQL client binaries (psql, pg_dump) used for assertions.
    pub bin: PathBuf,
    /// The temp dir of a server this run started (None with DB_INIT_TEST_DATABASE_URL).
    pub dir: Option<PathBuf>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

pub fn server() -> &'static Server {
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!(
            "no PostgreSQL server for the tests: {e}\n\
             Install the PostgreSQL server (Debian: apt-get install postgresql) so that initdb and pg_ctl are on \
             PATH or under /usr/lib/postgresql/<version>/bin, or set DB_INIT_TEST_DATABASE_URL to a superuser URL \
             of a server the tests may create databases on."
        ),
    }
}

fn pg_bin_dir() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("pg_ctl");
            if candidate.is_file() {
                let real = std::fs::canonicalize(&candidate).unwrap_or(candidate);
                if let Some(parent) = real.parent() {
                    return Ok(parent.to_path_buf());
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "pg_ctl is not on PATH and /usr/lib/postgresql does not exist".to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| "no /usr/lib/postgresql/<version>/bin/pg_ctl found".into())
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("DB_INIT_TEST_DATABASE_URL") {
        return from_url(&url);
    }
    let cluster = Cluster::init("main", true)?;
    cluster.start()?;
    let server = Server {
        host: "127.0.0.1".into(),
        port: cluster.port,
        user: "postgres".into(),
        password: PASSWORD.into(),
        bin: cluster.bin.clone(),
        dir: Some(cluster.dir.clone()),
    };
    let _ = MAIN_CLUSTER.set(cluster);
    unsafe {
        libc::atexit(stop_main_cluster);
    }
    server.psql(
        "postgres",
        "CREATE ROLE tls_only LOGIN PASSWORD 'tls-only-pw'",
    )?;
    Ok(server)
}

static MAIN_CLUSTER: OnceLock<Cluster> = OnceLock::new();

extern "C" fn stop_main_cluster() {
    if let Some(c) = MAIN_CLUSTER.get() {
        c.stop();
    }
}

/// One PostgreSQL cluster in a temp dir, run as `postgres` (or `nobody`) when we are root.
pub struct Cluster {
    pub dir: PathBuf,
    pub data: PathBuf,
    pub bin: PathBuf,
    pub port: u16,
    run_as: Option<String>,
}

impl Cluster {
    /// The user the server runs as when the tests run as root.
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }

    /// initdb and configuration; not started yet.
    pub fn init(tag: &str, tls: bool) -> Result<Cluster, String> {
        let bin = pg_bin_dir()?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| {
                    Command::new("id")
                        .arg("-u")
                        .arg(u)
                        .output()
                        .is_ok_and(|o| o.status.success())
                })
                .ok_or("running as root and neither user postgres nor nobody exists")?;
            Some(user.to_string())
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("db-init-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::write(dir.join("pw"), PASSWORD).map_err(|e| e.to_string())?;
        if let Some(user) = &run_as {
            let ok = Command::new("chown")
                .args(["-R", user])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot chown {} to {user}", dir.display()));
            }
        }
        let data = dir.join("data");
        let cluster = Cluster {
            port: free_port()?,
            dir,
            data,
            bin,
            run_as,
        };
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&cluster.data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", cluster.dir.join("pw").display()))
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = off\nfull_page_writes = off\nlog_min_messages = warning\n",
            cluster.port,
            cluster.dir.display()
        );
        if tls {
            crate::tls::setup_server_tls(&cluster.dir, &cluster.data, cluster.run_as.as_deref())?;
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            // A user that may only connect over TLS, for the `sslmode=disable` test.
            let hba_path = cluster.data.join("pg_hba.conf");
            let hba = std::fs::read_to_string(&hba_path).map_err(|e| e.to_string())?;
            std::fs::write(
                &hba_path,
                format!("hostnossl all tls_only 127.0.0.1/32 reject\nhostssl all tls_only 127.0.0.1/32 scram-sha-256\n{hba}"),
            )
            .map_err(|e| e.to_string())?;
        }
        append(&cluster.data.join("postgresql.conf"), &conf)?;
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(self.bin.join(program));
                c
            }
            None => Command::new(self.bin.join(program)),
        }
    }

    /// Starts the server and returns once it accepts connections (`pg_ctl -w`).
    pub fn start(&self) -> Result<(), String> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(|e| format!("running pg_ctl: {e}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// This cluster as a server the tests talk to (psql, URLs).
    pub fn server(&self) -> Server {
        Server {
            host: "127.0.0.1".into(),
            port: self.port,
            user: "postgres".into(),
            password: PASSWORD.into(),
            bin: self.bin.clone(),
            dir: Some(self.dir.clone()),
        }
    }

    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cluster a test started is stopped even when the test fails (the run's main cluster lives
/// in a static and is stopped by `atexit`).
impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn from_url(url: &str) -> Result<Server, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or("DB_INIT_TEST_DATABASE_URL is not a URL")?;
    let (userinfo, hostpart) = rest
        .rsplit_once('@')
        .ok_or("DB_INIT_TEST_DATABASE_URL needs user:password@")?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let hostport = hostpart.split(['/', '?']).next().unwrap_or("localhost");
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    let bin = pg_bin_dir().unwrap_or_else(|_| PathBuf::from("/usr/bin"));
    Ok(Server {
        host: host.into(),
        port: port
            .parse()
            .map_err(|_| "bad port in DB_INIT_TEST_DATABASE_URL")?,
        user: user.into(),
        password: password.into(),
        bin,
        dir: None,
    })
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

impl Server {
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{db}",
            self.user, self.password, self.host, self.port
        )
    }

    /// Runs SQL with the real psql (not Debian's wrapper) and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "psql failed on {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    pub fn server_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh database and a scratch working directory for one test.
pub struct TestDb {
    pub name: String,
    pub work: PathBuf,
}

impl TestDb {
    pub fn new(test: &str) -> TestDb {
        let s = server();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "t_{}_{}_{n}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id()
        );
        s.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("{e}"));
        let work = std::env::temp_dir().join(format!("db-init-work-{name}"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)
            .unwrap_or_else(|e| panic!("creating {}: {e}", work.display()));
        TestDb { name, work }
    }

    pub fn url(&self) -> String {
        server().url(&self.name)
    }

    /// psql on this database; panics with psql's message on failure.
    pub fn sql(&self, sql: &str) -> String {
        server()
            .psql(&self.name, sql)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The binary with a clean environment (no DB_INIT_*, DATABASE_URL, PG* from the caller),
    /// this database's URL in DB_INIT_DATABASE_URL, and the scratch dir as working directory.
    pub fn cmd(&self) -> Command {
        let mut c = bare_cmd(&self.work);
        c.env("DB_INIT_DATABASE_URL", self.url());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.cmd()
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("running {BIN}: {e}")),
        )
    }

    /// Copies a fixture folder (from tests/fixtures/drizzle) into the work dir.
    pub fn fixture(&self, rel: &str, dest: &str) -> PathBuf {
        let to = self.work.join(dest);
        copy_dir(&fixtures().join(rel), &to);
        to
    }
}

pub fn bare_cmd(work: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(work);
    c
}

/// The repository root (for the sample app, scripts, Dockerfile, manifests).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A psql session, named `app`, that takes advisory lock `key` in database `db` and holds it
/// for a minute (kill it to let go); returns once the server shows the lock granted. A holder
/// that could not connect (a loaded machine, a full connection table) is started again.
#[track_caller]
pub fn hold_advisory_lock(db: &str, key: &str, app: &str) -> std::process::Child {
    let granted = format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE a.application_name = '{app}' AND a.datname = current_database() \
         AND l.locktype = 'advisory' AND l.granted"
    );
    let started = std::time::Instant::now();
    loop {
        let mut holder = Command::new(server().bin.join("psql"))
            .args(["-X", "-q", "-d", &server().url(db)])
            .args([
                "-c",
                // Long enough for any load on the machine (a 60 s sleep once ended before a
                // loaded run got to its lock); the check lets the backend end soon after the
                // test kills this client.
                &format!(
                    "SET client_connection_check_interval = '1s'; \
                     SELECT pg_advisory_lock({key}); SELECT pg_sleep(900)"
                ),
            ])
            .env("PGAPPNAME", app)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        loop {
            if server().psql(db, &granted).as_deref() == Ok("1") {
                return holder;
            }
            if let Ok(Some(status)) = holder.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = holder.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "the lock holder keeps failing ({status}): {err}"
                );
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "timed out waiting for the holder to take the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Polls `done` every 20 ms until it holds; fails the test after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Writes `dir/name`, creating `dir`.
pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    std::fs::write(dir.join(name), text)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drizzle")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&p, to.join(entry.file_name()))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            // Fixtures are read-only; tests edit their copies.
            let _ = std::fs::set_permissions(
                to.join(entry.file_name()),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            );
        }
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// drizzle-orm's own `migrate()` at an exact version (scripts/drizzle installs it from npm into
/// a cache folder), as the JSON line the script prints.
pub fn drizzle(version: &str, db: &TestDb, folder: &Path) -> serde_json::Value {
    let out = Command::new("bash")
        .arg(repo().join("scripts/drizzle/migrate.sh"))
        .arg(version)
        .arg(db.url())
        .arg(folder)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/drizzle/migrate.sh: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "drizzle {version}: {e}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Cargo gives a test the variables of the package being tested (CARGO_MANIFEST_DIR,
/// CARGO_PKG_NAME, ...). Some build scripts (ring's) rerun when those change, so a build
/// started from a test with them would rebuild the release binary, and the next build from a
/// shell without them would rebuild it again.
pub fn without_cargo_test_env(c: &mut Command) {
    const PREFIXES: [&str; 7] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        if PREFIXES.iter().any(|p| var.starts_with(p)) {
            c.env_remove(&*var);
        }
    }
}

/// A peer tool at its exact version (`dbmate`, `sqlx-cli`), installed by
/// scripts/peers/install.sh into the cache folder; fails the test when it cannot be installed.
pub fn peer(tool: &str) -> PathBuf {
    let out = Command::new(repo().join("scripts/peers/install.sh"))
        .arg(tool)
        .output()
        .unwrap_or_else(|e| panic!("scripts/peers/install.sh: {e}"));
    assert!(
        out.status.success(),
        "{tool} could not be installed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
}
