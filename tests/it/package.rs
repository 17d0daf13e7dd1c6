//! Packaging (SPEC section 8): the static binary in an empty root file system, as PID 1, in a
//! container image built FROM scratch, and the deployment manifests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_norway::Value;

use crate::harness::{copy_dir, repo, wait_until, Run, TestDb};

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// The static release binary, built once per test run by scripts/build-static.sh.
pub(crate) fn static_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut build = Command::new("bash");
        build.arg(repo().join("scripts/build-static.sh"));
        crate::harness::without_cargo_test_env(&mut build);
        let out = build.output().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "static build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        repo().join("target/x86_64-unknown-linux-gnu/release/db-init")
    })
}

#[test]
fn the_release_binary_is_static_and_small() {
    let bin = static_binary();
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        text.contains("not a dynamic executable") || text.contains("statically linked"),
        "ldd says: {text}"
    );
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(u64::MAX);
    eprintln!("static binary: {size} bytes ({:.1} MB)", size as f64 / 1e6);
    assert!(
        size <= 10_000_000,
        "binary is {size} bytes, over the 10 MB budget"
    );
}

/// A root file system holding only the binary, /etc/hosts and the sample app.
fn empty_root(db: &TestDb) -> PathBuf {
    let root = db.work.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(static_binary(), root.join("db-init")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 localhost db\n")
        .unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&repo().join("migrations"), &root.join("work/migrations"));
    copy_dir(&repo().join("seeds"), &root.join("work/seeds"));
    root
}

#[test]
#[ignore = "needs root for chroot: run by .ci/run with --ignored"]
fn the_static_binary_migrates_the_sample_app_from_an_empty_root() {
    assert!(is_root(), "chroot needs root");
    let db = TestDb::new("chroot");
    let root = empty_root(&db);
    // `db` resolves through /etc/hosts inside the chroot: the static binary needs no NSS modules.
    let url = db.url().replace("127.0.0.1", "db");
    let out = Command::new("chroot")
        .arg(&root)
        .args([
            "/db-init",
            "run",
            "--migrations",
            "/work/migrations",
            "--seeds",
            "/work/seeds",
            "--database-url",
            &url,
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    Run::from(out).expect(0);
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "3"
    );
    assert_eq!(db.sql("SELECT count(*) FROM roles"), "4");
}

#[test]
#[ignore = "needs root for unshare --pid and chroot: run by .ci/run with --ignored"]
fn the_static_binary_as_pid_1_exits_143_on_sigterm() {
    assert!(is_root(), "unshare --pid and chroot need root");
    let db = TestDb::new("chroot_pid1");
    let root = empty_root(&db);
    let migrations = root.join("work/sleep");
    std::fs::create_dir_all(&migrations).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(migrations.join("0001_sleep.sql"), "SELECT pg_sleep(60);\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "chroot"])
        .arg(&root)
        .args([
            "/db-init",
            "migrate",
            "--migrations",
            "/work/sleep",
            "--database-url",
            &db.url(),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    while db.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND datname = current_database() AND pid <> pg_backend_pid()") != "1" {
        if let Ok(Some(_)) = child.try_wait() {
            let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
            panic!("db-init ended before its migration ran: {run:?}");
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
            panic!("the migration never started: {run:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
        .unwrap_or_default();
    let pid = children
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no child of unshare"))
        .to_string();
    let sent = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success()));
    let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    eprintln!(
        "static binary as PID 1: SIGTERM to exit {:?}",
        sent.elapsed()
    );
    run.expect(143);
    assert!(sent.elapsed() < Duration::from_secs(2));
    let gone = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' \
                AND datname = current_database() AND pid <> pg_backend_pid()";
    let locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    wait_until(
        "the statement to stop and the lock to go",
        Duration::from_secs(5),
        || db.sql(gone) == "0" && db.sql(locks) == "0",
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "0"
    );
}

fn podman(args: &[&str]) -> Command {
    let mut c = Command::new("podman");
    c.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
        .args(args);
    c
}

#[test]
#[ignore = "needs podman and runc: run by .ci/run with --ignored"]
fn the_scratch_image_runs_as_65532_against_the_test_server() {
    let info = podman(&["info"]).output();
    if !info.as_ref().is_ok_and(|o| o.status.success()) {
        let why = info
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_else(|e| e.to_string());
        panic!("podman does not work here (apt-get install podman runc): {why}");
    }
    static_binary();
    let tag = format!("localhost/db-init-test:{}", std::process::id());
    let build = podman(&["build", "--build-arg", "BINARY=host", "-t", &tag, "-f"])
        .arg(repo().join("Dockerfile"))
        .arg(repo())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        build.status.success(),
        "podman build failed: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let user = podman(&["image", "inspect", "--format", "{{.Config.User}}", &tag])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
    let db = TestDb::new("podman");
    let mount = |dir: &str| format!("{}:/work/{dir}:ro", repo().join(dir).display());
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ])
    .args([
        "--read-only",
        "-v",
        &mount("migrations"),
        "-v",
        &mount("seeds"),
        "-e",
    ])
    .arg(format!("DATABASE_URL={}", db.url()))
    .args([tag.as_str(), "run"])
    .output()
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = podman(&["rmi", "-f", &tag]).output();
    Run::from(out).expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM roles"), "4");
}

fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect()
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

fn check_db_init_container(c: &Value, file: &str) {
    let sc = at(c, "securityContext");
    assert_eq!(
        at(sc, "readOnlyRootFilesystem").as_bool(),
        Some(true),
        "{file}: readOnlyRootFilesystem"
    );
    assert_eq!(
        at(sc, "allowPrivilegeEscalation").as_bool(),
        Some(false),
        "{file}: allowPrivilegeEscalation"
    );
    assert_eq!(
        at(sc, "runAsNonRoot").as_bool(),
        Some(true),
        "{file}: runAsNonRoot"
    );
    assert_eq!(
        at(sc, "capabilities.drop.0").as_str(),
        Some("ALL"),
        "{file}: capabilities"
    );
    assert!(
        at(c, "resources.requests.memory").is_string()
            && at(c, "resources.limits.memory").is_string(),
        "{file}: resources"
    );
    assert_eq!(
        at(c, "terminationMessagePolicy").as_str(),
        Some("FallbackToLogsOnError"),
        "{file}"
    );
    let env = at(c, "env")
        .as_sequence()
        .unwrap_or_else(|| panic!("{file}: env"));
    let by_secret = env.iter().any(|e| {
        at(e, "name").as_str() == Some("DATABASE_URL")
            && at(e, "valueFrom.secretKeyRef.name").is_string()
    });
    let by_file = env
        .iter()
        .any(|e| at(e, "name").as_str() == Some("DATABASE_URL_FILE"));
    assert!(
        by_secret || by_file,
        "{file}: the URL must come from a secret"
    );
}

/// `kubernetes-validate` (PyPI) ships the Kubernetes schemas and validates offline; .ci/run
/// installs it in .ci/venv.
fn kubernetes_validate() -> Option<PathBuf> {
    let venv = repo().join(".ci/venv/bin/kubernetes-validate");
    if venv.is_file() {
        return Some(venv);
    }
    Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .ok()
        .map(|_| PathBuf::from("kubernetes-validate"))
}

#[test]
#[ignore = "needs kubernetes-validate from PyPI (.ci/run installs it in .ci/venv and runs --ignored)"]
fn the_kubernetes_manifests_validate_against_the_schemas() {
    let tool = kubernetes_validate().unwrap_or_else(|| {
        panic!("kubernetes-validate is not installed (pip install kubernetes-validate)")
    });
    for version in ["1.28.0", "1.31.0"] {
        let out = Command::new(&tool)
            .args(["--strict", "-k", version])
            .arg(repo().join("deploy/kubernetes/deployment.yaml"))
            .arg(repo().join("deploy/kubernetes/job.yaml"))
            .arg(repo().join("deploy/kubernetes/fleet-job.yaml"))
            .arg(repo().join("deploy/kubernetes/deployment-waits.yaml"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.matches("passed").count() == 4,
            "Kubernetes {version}: {text}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_have_the_fields_that_matter() {
    let deployment = &yaml("deploy/kubernetes/deployment.yaml")[0];
    assert_eq!(at(deployment, "kind").as_str(), Some("Deployment"));
    check_db_init_container(
        at(deployment, "spec.template.spec.initContainers.0"),
        "deployment.yaml",
    );
    let waits = &yaml("deploy/kubernetes/deployment-waits.yaml")[0];
    let init = at(waits, "spec.template.spec.initContainers.0");
    check_db_init_container(init, "deployment-waits.yaml");
    let args: Vec<&str> = at(init, "args")
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(args, ["wait", "--migrated"], "deployment-waits.yaml");
    let job = &yaml("deploy/kubernetes/job.yaml")[0];
    assert_eq!(at(job, "kind").as_str(), Some("Job"));
    let ann = at(job, "metadata.annotations");
    assert_eq!(
        ann.get("helm.sh/hook").and_then(Value::as_str),
        Some("pre-install,pre-upgrade")
    );
    assert_eq!(
        ann.get("argocd.argoproj.io/hook").and_then(Value::as_str),
        Some("PreSync")
    );
    assert_eq!(
        at(job, "spec.template.spec.restartPolicy").as_str(),
        Some("Never")
    );
    check_db_init_container(at(job, "spec.template.spec.containers.0"), "job.yaml");
    check_failure_policy(job, "FailJob", &[2, 4, 6, 7, 8], "job.yaml");
    check_fleet_job();
    let kustomization = &yaml("deploy/kubernetes/kustomization.yaml")[0];
    let resources: Vec<&str> = at(kustomization, "resources")
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for r in &resources {
        assert!(
            repo().join("deploy/kubernetes").join(r).is_file(),
            "kustomization names missing {r}"
        );
    }
    // Secrets by reference only: nothing in the folder holds a URL with a password.
    assert!(
        at(kustomization, "secretGenerator").is_null(),
        "kustomization.yaml generates a secret"
    );
    for entry in
        std::fs::read_dir(repo().join("deploy/kubernetes")).unwrap_or_else(|e| panic!("{e}"))
    {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains("postgres://app:"),
            "{} holds a password",
            path.display()
        );
    }
}

/// A Job that does not retry the exit codes a retry meets again (`codes`), retries an evicted
/// pod without counting it, and mounts no service-account token.
fn check_failure_policy(job: &Value, action: &str, codes: &[u64], file: &str) {
    let rules = at(job, "spec.podFailurePolicy.rules");
    let exit_rule = at(rules, "0");
    assert_eq!(at(exit_rule, "action").as_str(), Some(action), "{file}");
    assert_eq!(
        at(exit_rule, "onExitCodes.containerName").as_str(),
        Some("db-init"),
        "{file}"
    );
    let values: Vec<u64> = at(exit_rule, "onExitCodes.values")
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(values, codes, "{file}");
    assert_eq!(at(rules, "1.action").as_str(), Some("Ignore"), "{file}");
    assert_eq!(
        at(rules, "1.onPodConditions.0.type").as_str(),
        Some("DisruptionTarget"),
        "{file}"
    );
    assert_eq!(
        at(job, "spec.template.spec.automountServiceAccountToken").as_bool(),
        Some(false),
        "{file}"
    );
}

/// The Indexed Job of a run over many databases: one shard per index, the shard count the
/// same in the Job and in DB_INIT_SHARD, INDEX left to JOB_COMPLETION_INDEX.
fn check_fleet_job() {
    let job = &yaml("deploy/kubernetes/fleet-job.yaml")[0];
    assert_eq!(at(job, "kind").as_str(), Some("Job"));
    let spec = at(job, "spec");
    assert_eq!(at(spec, "completionMode").as_str(), Some("Indexed"));
    let completions = at(spec, "completions").as_u64();
    assert!(
        completions.is_some_and(|c| c > 1),
        "fleet-job.yaml: completions"
    );
    assert_eq!(at(spec, "parallelism").as_u64(), completions);
    assert!(
        at(spec, "backoffLimitPerIndex").is_u64(),
        "fleet-job.yaml: backoffLimitPerIndex"
    );
    assert_eq!(
        at(spec, "template.spec.restartPolicy").as_str(),
        Some("Never")
    );
    let container = at(spec, "template.spec.containers.0");
    check_db_init_container(container, "fleet-job.yaml");
    check_failure_policy(job, "FailIndex", &[2, 4, 7], "fleet-job.yaml");
    let env = |name: &str| {
        at(container, "env")
            .as_sequence()
            .and_then(|env| env.iter().find(|e| at(e, "name").as_str() == Some(name)))
            .and_then(|e| at(e, "value").as_str())
            .map(str::to_string)
    };
    let count = completions.map(|c| c.to_string()).unwrap_or_default();
    assert_eq!(
        env("DB_INIT_SHARD"),
        Some(format!("/{count}")),
        "fleet-job.yaml: DB_INIT_SHARD"
    );
    assert!(
        env("DB_INIT_DATABASES_QUERY").is_some() || env("DB_INIT_DATABASES_FILE").is_some(),
        "fleet-job.yaml: no database set"
    );
}

#[test]
fn the_compose_file_starts_web_only_after_db_init_succeeded() {
    let compose = &yaml("deploy/compose.yaml")[0];
    let services = at(compose, "services");
    assert!(at(services, "postgres.healthcheck.test")
        .as_sequence()
        .is_some_and(|t| t
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains("pg_isready")))));
    assert_eq!(
        at(services, "db-init.depends_on.postgres.condition").as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        at(services, "web.depends_on.db-init.condition").as_str(),
        Some("service_completed_successfully")
    );
    let volumes = at(services, "db-init.volumes")
        .as_sequence()
        .unwrap_or_else(|| panic!("db-init volumes"));
    assert!(volumes.iter().any(|v| v
        .as_str()
        .is_some_and(|s| s.ends_with(":/work/migrations:ro"))));
}
