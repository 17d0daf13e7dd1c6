"""Rollouts: N replicas of db-init started together (leader's exit to the last follower's exit,
against the same spread for N `psql -c 'select 1'`), and a pod start with nothing to do over a
10,000-migration folder (against `psql -c 'select 1'`). Called by bench/run.sh with a temp
server in PG_TEMP_*; prints Markdown tables."""

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_INIT = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "db-init"
PSQL = Path(os.environ["PG_BIN"]) / "psql"
BASE = f"postgres://postgres@127.0.0.1:{os.environ['PG_TEMP_PORT']}"
ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


def psql(db, sql):
    subprocess.run([str(PSQL), "-X", "-q", "-d", f"{BASE}/{db}", "-c", sql], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)


def fresh_db(name):
    psql("postgres", f'DROP DATABASE IF EXISTS "{name}"')
    psql("postgres", f'CREATE DATABASE "{name}"')
    return f"{BASE}/{name}"


def together(cmds, env):
    """Starts every command at once; returns (exit time in s, stderr) per process, in order."""
    procs = [subprocess.Popen(c, env={**ENV, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for c in cmds]
    ends = [None] * len(procs)
    deadline = time.perf_counter() + 120
    while None in ends and time.perf_counter() < deadline:
        for i, p in enumerate(procs):
            if ends[i] is None and p.poll() is not None:
                ends[i] = time.perf_counter()
        time.sleep(0.001)
    out = []
    for p, end in zip(procs, ends):
        _, err = p.communicate(timeout=30)
        if p.returncode != 0 or end is None:
            sys.exit(f"{p.args[0]} failed ({p.returncode}): {err.decode(errors='replace')[-500:]}")
        out.append((end, err.decode(errors="replace")))
    return out


def wave(n):
    """ms from the leader's exit (the replica that applied the migrations) to the last exit."""
    url = fresh_db(f"bench_wave_{n}")
    cmd = [str(DB_INIT), "run", "--migrations", str(ROOT / "migrations"), "--seeds", str(ROOT / "seeds"),
           "--database-url", url]
    ends = together([cmd] * n, {})
    leaders = [end for end, err in ends if "0 migration(s) applied" not in err]
    if len(leaders) != 1:
        sys.exit(f"expected one replica to migrate, saw {len(leaders)}")
    applied_seeds = sum("seeded" in err for _, err in ends)
    return (max(e for e, _ in ends) - leaders[0]) * 1000, applied_seeds


def psql_spread(n):
    cmd = [str(PSQL), "-X", "-q", "-d", f"{BASE}/postgres", "-c", "select 1"]
    ends = together([cmd] * n, {})
    return (max(e for e, _ in ends) - min(e for e, _ in ends)) * 1000


def big_folder(tmp, count=10_000):
    """A Drizzle folder of `count` one-statement migrations, recorded as applied directly."""
    folder = Path(tmp) / "big"
    (folder / "meta").mkdir(parents=True)
    entries, rows = [], []
    for i in range(count):
        tag = f"{i:05d}_m{i}"
        sql = f"SELECT {i};\n"
        (folder / f"{tag}.sql").write_text(sql)
        when = 1_700_000_000_000 + i
        entries.append({"idx": i, "version": "7", "when": when, "tag": tag, "breakpoints": True})
        rows.append(f"{hashlib.sha256(sql.encode()).hexdigest()}\t{when}")
    (folder / "meta" / "_journal.json").write_text(json.dumps({"version": "7", "dialect": "postgresql",
                                                                  "entries": entries}))
    url = fresh_db("bench_big_folder")
    psql("bench_big_folder", 'CREATE SCHEMA drizzle; CREATE TABLE drizzle.__drizzle_migrations '
                             '(id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)')
    copy = Path(tmp) / "rows.tsv"
    copy.write_text("\n".join(rows) + "\n")
    psql("bench_big_folder", f"\\copy drizzle.__drizzle_migrations (hash, created_at) FROM '{copy}'")
    return folder, url


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main():
    rounds = int(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="db-init-rollout-")
    print(f"\nRollouts and big folders: {rounds} rounds, medians.\n")
    print("| measure | db-init | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for n in (10, 50):
        spreads, floors, seeds = [], [], []
        for _ in range(rounds):
            spread, seeded = wave(n)
            spreads.append(spread)
            seeds.append(seeded)
            floors.append(psql_spread(n))
        s, f = statistics.median(spreads), statistics.median(floors)
        print(f"| {n} replicas: leader exit -> last exit (seeds run per wave: {max(seeds)}) | {s:.0f} ms "
              f"| {f:.0f} ms (spread of {n} `psql -c 'select 1'`) | {s / max(f, 1):.1f}x | <= 100 ms |")
    folder, url = big_folder(tmp)
    noop = [str(DB_INIT), "migrate", "--migrations", str(folder), "--database-url", url]
    floor = [str(PSQL), "-X", "-q", "-d", url, "-c", "select 1"]
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(timed(noop))
        theirs.append(timed(floor))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"| nothing to do, 10,000 migrations | {o:.0f} ms | {t:.0f} ms (`psql -c 'select 1'`) "
          f"| {o / t:.1f}x | <= 100 ms |")


main()
