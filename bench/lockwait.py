"""What a migration's lock wait costs the app: a read load (pgbench, rate-limited) on a table, a
long read transaction holding its ACCESS SHARE lock for 16 s, and db-init adding a column to
that table meanwhile. While the ALTER waits for its ACCESS EXCLUSIVE lock, every reader queues
behind it, for up to `ddl_lock_timeout` per attempt. Compared in one run: the old default (5 s,
5 retries) and short waits with many retries. Called by bench/run.sh (`bench/run.sh lockwait`)
with a temp server in PG_TEMP_*; prints a Markdown table."""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_INIT = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "db-init"
BIN = Path(os.environ["PG_BIN"])
BASE = f"postgres://postgres@127.0.0.1:{os.environ['PG_TEMP_PORT']}"
ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
DB = "bench_lockwait"
URL = f"{BASE}/{DB}"
SECONDS = 30
BLOCK = 16
RATE = 200


def psql(db, sql):
    subprocess.run([str(BIN / "psql"), "-X", "-q", "-d", f"{BASE}/{db}", "-c", sql], check=True,
                   env=ENV, stdout=subprocess.DEVNULL)


def setup():
    psql("postgres", f'DROP DATABASE IF EXISTS "{DB}"')
    psql("postgres", f'CREATE DATABASE "{DB}"')
    psql(DB, "CREATE TABLE t (id int PRIMARY KEY, v text); "
             "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 10000) g")


def one(label, timeout, retries, work):
    """Runs the load, the blocker and db-init; returns the row of the table."""
    psql(DB, "ALTER TABLE t DROP COLUMN IF EXISTS c; DROP SCHEMA IF EXISTS db_init CASCADE")
    folder = work / label.replace(" ", "_")
    (folder / "migrations").mkdir(parents=True)
    (folder / "migrations" / "0001_add_c.sql").write_text("ALTER TABLE t ADD COLUMN c int;\n")
    history = label.split()[0]
    script = work / "read.sql"
    script.write_text("\\set id random(1, 10000)\nSELECT v FROM t WHERE id = :id;\n")
    logs = work / f"log_{history}"
    load = subprocess.Popen([str(BIN / "pgbench"), "-n", "-c", "8", "-j", "2", "-T", str(SECONDS),
                             "-R", str(RATE), "-f", str(script), "-l", f"--log-prefix={logs}", URL],
                            env=ENV, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(2)
    blocker = subprocess.Popen([str(BIN / "psql"), "-X", "-q", "-d", URL, "-c",
                                f"BEGIN; SELECT count(*) FROM t; SELECT pg_sleep({BLOCK}); COMMIT;"],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    started = time.perf_counter()
    run = subprocess.run([str(DB_INIT), "migrate", "--migrations", str(folder / "migrations"),
                          "--database-url", URL,
                          "--ddl-lock-timeout", timeout, "--ddl-lock-retries", str(retries)],
                         env=ENV, cwd=folder, capture_output=True, text=True)
    took = time.perf_counter() - started
    blocker.wait(timeout=60)
    load.wait(timeout=SECONDS + 60)
    latencies = []
    for f in work.glob(f"log_{history}*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            # client transaction time(us) script epoch epoch_us [schedule_lag(us)]
            if len(parts) >= 7:
                latencies.append((int(parts[2]) + int(parts[6])) / 1000.0)
            elif len(parts) >= 3:
                latencies.append(int(parts[2]) / 1000.0)
    if not latencies:
        sys.exit(f"{label}: pgbench logged nothing: {load.stderr.read().decode(errors='replace')}")
    latencies.sort()
    over = sum(1 for x in latencies if x > 1000) / len(latencies)
    attempts = run.stderr.count("retrying the migration") + 1
    return (label, run.returncode, took, attempts, over, latencies[int(len(latencies) * 0.99) - 1],
            latencies[-1], len(latencies))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    setup()
    configs = [("5s x 5 (old default)", "5s", 5), ("300ms x 30 (new default)", "300ms", 30)]
    rows = {c[0]: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for label, timeout, retries in configs:
                work = Path(tmp) / f"r{r}"
                work.mkdir(exist_ok=True)
                rows[label].append(one(label, timeout, retries, work))
    print(f"\nLock waits under a read load ({RATE} reads/s over 8 clients, pgbench -R), a read "
          f"transaction holding the table {BLOCK} s, db-init adding a column meanwhile; "
          f"{rounds} round(s), medians; latency = pgbench's time + schedule lag:\n")
    print("| ddl_lock_timeout x retries | db-init exit | migration took | attempts | reads over 1 s | p99 read | max read | reads |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, got in rows.items():
        med = lambda i: statistics.median(g[i] for g in got)
        codes = ",".join(sorted({str(g[1]) for g in got}))
        print(f"| {label} | {codes} | {med(2):.1f} s | {med(3):.0f} | {med(4) * 100:.1f}% | "
              f"{med(5):.0f} ms | {med(6):.0f} ms | {med(7):.0f} |")


if __name__ == "__main__":
    main()
