"""Runs the benchmark rounds; called by bench/run.sh with a temp server in PG_TEMP_*."""

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
FIXTURE = ROOT / "tests" / "fixtures" / "drizzle" / "synthetic-300"
DB_INIT = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "db-init"
PG_BIN = Path(os.environ["PG_BIN"])
PSQL = PG_BIN / "psql"  # the real psql, not Debian's Perl wrapper in /usr/bin
PORT = os.environ["PG_TEMP_PORT"]
BASE = f"postgres://postgres@127.0.0.1:{PORT}"
ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


TIME = "/usr/bin/time"  # GNU time: getrusage of the exec'd program, not of a forked Python


def run(cmd, env=None):
    """Wall time (ms) and peak RSS (MB) of one process, which must exit 0. Every tool pays the
    same small cost of the /usr/bin/time wrapper."""
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M"] + cmd, env={**ENV, **(env or {})},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = (time.perf_counter() - start) * 1000
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {err}")
    return wall, int(err.strip().splitlines()[-1]) / 1024


def psql(db, sql):
    subprocess.run([str(PSQL), "-X", "-q", "-d", f"{BASE}/{db}", "-c", sql], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)


def fresh_db(name):
    psql("postgres", f'DROP DATABASE IF EXISTS "{name}"')
    psql("postgres", f'CREATE DATABASE "{name}"')
    return f"{BASE}/{name}"


def concatenated_sql(tmp):
    journal = json.loads((FIXTURE / "meta" / "_journal.json").read_text())
    out = Path(tmp) / "all.sql"
    with out.open("w") as f:
        for e in journal["entries"]:
            f.write((FIXTURE / f"{e['tag']}.sql").read_text())
            f.write("\n;\n")
    return out


def setup_drizzle(tmp):
    """Installs drizzle-orm and pg with npm; None when the registry cannot be reached."""
    if not shutil.which("npm") or not shutil.which("node"):
        return None, "npm/node not installed"
    d = Path(tmp) / "drizzle"
    d.mkdir()
    (d / "package.json").write_text('{"type": "module", "private": true}')
    r = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "drizzle-orm@0.45.4", "pg@8.23.1"],
                       cwd=d, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return None, f"npm install failed: {r.stderr.strip()[:200]}"
    (d / "migrate.mjs").write_text(
        "import { drizzle } from 'drizzle-orm/node-postgres';\n"
        "import { migrate } from 'drizzle-orm/node-postgres/migrator';\n"
        "import pg from 'pg';\n"
        "const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });\n"
        "await migrate(drizzle(pool), { migrationsFolder: process.argv[2] });\n"
        "await pool.end();\n")
    return d / "migrate.mjs", None


def main():
    if not Path(TIME).exists():
        sys.exit("bench needs GNU time at /usr/bin/time (Debian: apt-get install time)")
    rounds = int(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="db-init-bench-")
    sql = concatenated_sql(tmp)
    drizzle, why_not = setup_drizzle(tmp)
    apply, noop = {"db-init": [], "psql": [], "drizzle": []}, {"db-init": [], "psql": [], "drizzle": []}
    tools = ["db-init", "psql"] + (["drizzle"] if drizzle else [])
    for r in range(rounds):
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for tool in order:
            url = fresh_db(f"bench_{tool.replace('-', '_')}")
            if tool == "db-init":
                cmd, env = [str(DB_INIT), "migrate", "--migrations", str(FIXTURE)], {"DATABASE_URL": url}
                noop_cmd = [str(DB_INIT), "run", "--migrations", str(FIXTURE), "--seeds", "/nonexistent"]
            elif tool == "psql":
                cmd, env = [str(PSQL), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(sql)], {}
                noop_cmd = [str(PSQL), "-X", "-q", "-d", url, "-c", "select 1"]
            else:
                cmd, env = ["node", str(drizzle), str(FIXTURE)], {"DATABASE_URL": url}
                noop_cmd = cmd
            apply[tool].append(run(cmd, env))
            noop[tool].append(run(noop_cmd, env))
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    size = DB_INIT.stat().st_size / 1e6

    def row(key):
        a, n = med(apply[key], 0), med(noop[key], 0)
        ra, rn = max(med(apply[key], 1), 0), max(med(noop[key], 1), 0)
        return a, n, max(ra, rn)

    d_a, d_n, d_rss = row("db-init")
    p_a, p_n, p_rss = row("psql")
    print(f"\n{rounds} rounds, tools interleaved, medians; PostgreSQL on this machine with fsync on; "
          f"synthetic-300 (300 migrations).\n")
    print("| run | apply 300 | nothing to do | peak RSS |")
    print("| --- | --- | --- | --- |")
    print(f"| db-init | {d_a:.0f} ms | {d_n:.1f} ms | {d_rss:.1f} MB |")
    print(f"| psql floor (`psql -X -1 -f`, `psql -X -c 'select 1'`) | {p_a:.0f} ms | {p_n:.1f} ms | {p_rss:.1f} MB |")
    if drizzle:
        z_a, z_n, z_rss = row("drizzle")
        print(f"| Drizzle `migrate()` (node, drizzle-orm 0.45.4) | {z_a:.0f} ms | {z_n:.1f} ms | {z_rss:.1f} MB |")
    print()
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    print(f"| apply: db-init / psql floor | {d_a / p_a:.2f}x | <= 1.2x |")
    print(f"| nothing to do: db-init / `psql -c 'select 1'` | {d_n / p_n:.2f}x | <= 2x |")
    if drizzle:
        print(f"| apply: db-init / Drizzle | {d_a / z_a:.2f}x | < 1x |")
        print(f"| nothing to do: db-init / Drizzle | {d_n / z_n:.2f}x | < 1x |")
    else:
        print(f"| Drizzle | not measured: {why_not} | |")
    print(f"| peak RSS of db-init | {d_rss:.1f} MB | <= 12 MB |")
    print(f"| static binary size | {size:.1f} MB | <= 10 MB |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
