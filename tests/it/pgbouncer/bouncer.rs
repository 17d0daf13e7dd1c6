//! A real PgBouncer for the tests: a pgbouncer.ini and userlist in a temp dir, the system's
//! `pgbouncer` on a free port in front of the test server, run as the server's user when we
//! are root, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{server, write, TestDb};

/// One PgBouncer in a temp dir, stopped when dropped.
pub struct Bouncer {
    port: u16,
    dir: std::path::PathBuf,
    child: Child,
}

fn pgbouncer_binary() -> std::path::PathBuf {
    let mut candidates = vec![std::path::PathBuf::from("/usr/sbin/pgbouncer")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("pgbouncer")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("pgbouncer is not installed (Debian: apt-get install pgbouncer); these tests need it")
        })
}

/// PgBouncer refuses to run as root: the user the test server runs as, when we are root.
fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |user: &str, flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let ids = ["postgres", "nobody"]
        .into_iter()
        .find_map(|u| Some((id(u, "-u")?, id(u, "-g")?)));
    Some(
        ids.unwrap_or_else(|| {
            panic!("running as root and neither user postgres nor nobody exists")
        }),
    )
}

impl Bouncer {
    /// PgBouncer with its default settings but `pool_mode`, and any `extra` lines.
    pub fn start(pool_mode: &str, extra: &str) -> Bouncer {
        let s = server();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let dir =
            std::env::temp_dir().join(format!("db-init-pgbouncer-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The plain password: PgBouncer answers the client's SCRAM and logs in to the server.
        write(
            &dir,
            "userlist.txt",
            &format!("\"{}\" \"{}\"\n", s.user, s.password),
        );
        write(
            &dir,
            "pgbouncer.ini",
            &format!(
                "[databases]\n* = host={} port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {}\npool_mode = {pool_mode}\n\
                 logfile = {}\n{extra}\n",
                s.host,
                s.port,
                dir.join("userlist.txt").display(),
                dir.join("pgbouncer.log").display(),
            ),
        );
        let mut cmd = Command::new(pgbouncer_binary());
        cmd.arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = run_as() {
            let ok = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot chown {}", dir.display());
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting pgbouncer: {e}"));
        let mut bouncer = Bouncer { port, dir, child };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                panic!("pgbouncer exited ({status}):\n{}", bouncer.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer not listening after 10 s:\n{}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bouncer
    }

    pub fn url(&self, db: &TestDb) -> String {
        let s = server();
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            s.user, s.password, self.port, db.name
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Leaves `n` idle server connections in the bouncer's pool of `db` (n clients at once).
pub fn warm(bouncer: &Bouncer, db: &TestDb, n: usize) {
    let clients: Vec<_> = (0..n)
        .map(|_| {
            Command::new(server().bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-d",
                    &bouncer.url(db),
                    "-c",
                    "SELECT pg_sleep(1)",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    for mut c in clients {
        let ok = c.wait().is_ok_and(|s| s.success());
        assert!(ok, "psql through pgbouncer failed:\n{}", bouncer.log());
    }
    let busy = db.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert_eq!(busy, n.to_string(), "server connections in the pool");
}
