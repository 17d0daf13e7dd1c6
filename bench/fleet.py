"""The many-databases benchmark; called by `bench/run.sh fleet [rounds] [databases]` with a temp
server in PG_TEMP_*. On N databases (default 1,000) with the sample app (the repository's
migrations/ and seeds/), in one run and with the same parallelism:

  (b) each database empty, applying the sample app;
  (a) each database already migrated: nothing to do (`seed_mode: on-change`, so unchanged seeds
      are skipped too; the run with the default `seed_mode: always` is measured as well).

Tools: db-init over the set (one process); `xargs -P` running db-init once per database; a
sequential shell loop; and the floor, the real psql (not Debian's wrapper) running the same SQL
over the same databases with `xargs -P`. Prints Markdown tables."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_INIT = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "db-init"
PG_BIN = Path(os.environ["PG_BIN"])
PSQL = PG_BIN / "psql"  # the real psql, not Debian's Perl wrapper in /usr/bin
PORT = os.environ["PG_TEMP_PORT"]
BASE = f"postgres://postgres@127.0.0.1:{PORT}"
ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
TIME = "/usr/bin/time"  # GNU time: peak RSS of the exec'd program
CONCURRENCY = 8
APP = ["--migrations", str(ROOT / "migrations"), "--seeds", str(ROOT / "seeds")]


def timed(cmd, env=None):
    """Wall time (s) and peak RSS (MB) of one command, which must exit 0."""
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M"] + cmd, env={**ENV, **(env or {})},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, int(err.strip().splitlines()[-1]) / 1024


def psql(db, sql):
    subprocess.run([str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{BASE}/{db}", "-c", sql],
                   check=True, env={**ENV, "PGOPTIONS": "-c client_min_messages=warning"}, stdout=subprocess.DEVNULL)


def psql_scripts(scripts):
    """Runs scripts in parallel psql sessions (each statement in its own transaction)."""
    quiet = {**ENV, "PGOPTIONS": "-c client_min_messages=warning"}
    procs = [subprocess.Popen([str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{BASE}/postgres", "-f", "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=quiet) for _ in scripts]
    for p, s in zip(procs, scripts):
        p.stdin.write(s.encode())
        p.stdin.close()
    if any(p.wait() != 0 for p in procs):
        sys.exit("psql script failed")


def chunks(names, n=4):
    return [names[i::n] for i in range(n)]


def create(names):
    existing = subprocess.run([str(PSQL), "-X", "-A", "-t", "-d", f"{BASE}/postgres", "-c",
                               "SELECT datname FROM pg_database WHERE datname LIKE 'fleet\\_%'"],
                              check=True, env=ENV, capture_output=True, text=True).stdout.split()
    missing = [n for n in names if n not in set(existing)]
    psql_scripts(["".join(f'CREATE DATABASE "{n}";\n' for n in part) for part in chunks(missing)])


def reset(names):
    """Every database back to empty: the app's tables and both history schemas dropped."""
    drop = ("DROP SCHEMA IF EXISTS drizzle CASCADE; DROP SCHEMA IF EXISTS db_init CASCADE; "
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;\n")
    psql_scripts(["".join(f"\\c {n}\n{drop}" for n in part) for part in chunks(names)])


def yaml_seed_sql(path):
    """The YAML seed as the INSERT ... ON CONFLICT a person would write for psql."""
    import yaml  # python3-yaml; only the floor needs it
    doc = yaml.safe_load(path.read_text())
    key = doc["key"] if isinstance(doc["key"], list) else [doc["key"]]
    out = []
    for row in doc["rows"]:
        cols = list(row)
        vals = ", ".join("'" + str(row[c]).replace("'", "''") + "'" for c in cols)
        others = [c for c in cols if c not in key]
        action = "NOTHING" if doc.get("on_conflict") == "ignore" or not others else \
            "UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in others) + " WHERE " + \
            " OR ".join(f"{doc['table']}.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in others)
        out.append(f"INSERT INTO {doc['table']} ({', '.join(cols)}) VALUES ({vals}) "
                   f"ON CONFLICT ({', '.join(key)}) DO {action};")
    return "\n".join(out) + "\n"


def floor_sql(tmp):
    """What db-init sends for the sample app (its `plan` on an empty database: history DDL,
    migrations with their history rows) and the seeds, as one psql script."""
    psql("postgres", "DROP DATABASE IF EXISTS fleet_probe")
    psql("postgres", "CREATE DATABASE fleet_probe")
    plan = subprocess.run([str(DB_INIT), "plan", "--database-url", f"{BASE}/fleet_probe"] + APP,
                          check=True, env=ENV, capture_output=True, text=True).stdout
    # The migrations part; on an empty database `plan` can only describe the seeds (their
    # tables do not exist yet), so they are added below as psql would run them.
    lines = plan.splitlines(keepends=True)
    end = next((i for i, l in enumerate(lines) if l.startswith(("-- seed ", "-- db_init.seed_runs"))), len(lines))
    plan = "".join(lines[:end])
    seeds = []
    for f in sorted((ROOT / "seeds").iterdir()):
        seeds.append(f"BEGIN;\n{f.read_text() if f.suffix == '.sql' else yaml_seed_sql(f)}COMMIT;\n")
    out = Path(tmp) / "floor.sql"
    out.write_text(plan + "".join(seeds))
    subprocess.run([str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{BASE}/fleet_probe", "-f", str(out)],
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    psql("postgres", "DROP DATABASE fleet_probe")
    return out


def up_to_date(names_file, n):
    """Every database has the sample app's migrations recorded and its roles seeded."""
    out = subprocess.run([str(DB_INIT), "status", "--format", "json", "--databases-file", str(names_file),
                          "--database-url", f"{BASE}/postgres"] + APP,
                         env=ENV, capture_output=True, text=True)
    try:
        done = json.loads(out.stdout)["up_to_date"]
    except (ValueError, KeyError):
        done = None
    if done != n:
        sys.exit(f"not every database is migrated ({done} of {n}): {out.stderr[-500:]}")


def tools(names_file, floor):
    per_db = f"{DB_INIT} run --database-url {BASE}/{{}} {' '.join(APP)}"
    xargs = f"xargs -P {CONCURRENCY} -I{{}} {per_db}"
    loop = f"while read -r d; do {per_db.replace('{}', '$d')} || exit 1; done"
    psql = f"xargs -P {CONCURRENCY} -I{{}} {PSQL} -X -q -v ON_ERROR_STOP=1 -d {BASE}/{{}}"
    nothing = "--seed-mode on-change"
    fleet = [str(DB_INIT), "run", "--databases-file", str(names_file), "--concurrency", str(CONCURRENCY),
             "--database-url", f"{BASE}/postgres"] + APP
    sh = lambda s: ["sh", "-c", f"{s} < {names_file}"]
    return {
        "db-init over the set": (fleet, fleet + nothing.split()),
        f"`xargs -P {CONCURRENCY}` db-init per database": (sh(xargs), sh(f"{xargs} {nothing}")),
        "sequential shell loop": (sh(loop), sh(loop.replace("|| exit", f"{nothing} || exit"))),
        f"psql floor (`xargs -P {CONCURRENCY} psql`: `-f` the same SQL / `-c 'select 1'`)":
            (sh(f"{psql} -f {floor}"), sh(f"{psql} -c 'select 1'")),
    }


def main():
    if not Path(TIME).exists():
        sys.exit("bench needs GNU time at /usr/bin/time (Debian: apt-get install time)")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    tmp = tempfile.mkdtemp(prefix="db-init-fleet-")
    names = [f"fleet_{i:04d}" for i in range(n)]
    names_file = Path(tmp) / "databases.txt"
    names_file.write_text("".join(f"{x}\n" for x in names))
    started = time.perf_counter()
    create(names)
    print(f"{n} databases created in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    floor = floor_sql(tmp)
    runs = tools(names_file, floor)
    apply, noop, rss = {k: [] for k in runs}, {k: [] for k in runs}, []
    always = []
    order = list(runs)
    for r in range(rounds):
        for tool in order[r % len(order):] + order[:r % len(order)]:
            reset(names)
            a_cmd, n_cmd = runs[tool]
            wall, mb = timed(a_cmd)
            up_to_date(names_file, n)
            apply[tool].append(wall)
            wall_noop, mb_noop = timed(n_cmd)
            noop[tool].append(wall_noop)
            print(f"round {r + 1}: {tool}: apply {wall:.1f} s, nothing to do {wall_noop:.2f} s", file=sys.stderr)
            if tool == "db-init over the set":
                wall_always, mb_always = timed(a_cmd)
                always.append(wall_always)
                rss.append(max(mb, mb_noop, mb_always))
    med = {k: (statistics.median(apply[k]), statistics.median(noop[k])) for k in runs}
    names_ = list(runs)
    fleet, xargs, loop, floor_ = (med[k] for k in names_)
    print(f"\n{n} databases, concurrency {CONCURRENCY}, {rounds} round(s), tools interleaved, medians; "
          f"PostgreSQL on this machine with fsync on; the sample app (migrations/ and seeds/).\n")
    print("| run | (b) apply the sample app to empty databases | (a) nothing to do |")
    print("| --- | --- | --- |")
    for k in names_:
        print(f"| {k} | {med[k][0]:.1f} s | {med[k][1]:.2f} s |")
    print()
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    print(f"| (a) nothing to do, db-init over the set | {fleet[1]:.2f} s | <= 5 s |")
    print(f"| (a) with the default `seed_mode: always`, db-init over the set | {statistics.median(always):.2f} s | |")
    print(f"| (b) db-init over the set / psql floor | {fleet[0] / floor_[0]:.2f}x | <= 1.2x |")
    print(f"| (a) db-init over the set / psql `select 1` floor | {fleet[1] / floor_[1]:.2f}x | |")
    print(f"| (b) db-init over the set / `xargs -P {CONCURRENCY}` | {fleet[0] / xargs[0]:.2f}x | < 1x |")
    print(f"| (a) db-init over the set / `xargs -P {CONCURRENCY}` | {fleet[1] / xargs[1]:.2f}x | < 1x |")
    print(f"| (b) db-init over the set / sequential loop | {fleet[0] / loop[0]:.2f}x | < 1x |")
    print(f"| (a) db-init over the set / sequential loop | {fleet[1] / loop[1]:.2f}x | < 1x |")
    print(f"| peak RSS of db-init over the set | {max(rss):.1f} MB | <= 30 MB |")
    shutil.rmtree(tmp, ignore_errors=True)


main()
