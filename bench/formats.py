"""The same 300 migrations (the Drizzle synthetic-300 fixture's SQL) in every format db-init
reads, applied and then started again with nothing to do, side by side in one run with db-init on
the Drizzle folder (the reference figures) and with dbmate and sqlx-cli themselves on their own
folders (scripts/peers/install.sh). Called by bench/run.sh formats with a temp server in PG_TEMP_*.
Prints a Markdown table: medians, and each format's ratio to db-init on the Drizzle folder."""

import json
from datetime import datetime, timedelta
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DB_INIT, FIXTURE, ROOT, fresh_db, run  # noqa: E402


def statements():
    journal = json.loads((FIXTURE / "meta" / "_journal.json").read_text())
    return [(e["tag"], (FIXTURE / f"{e['tag']}.sql").read_text()) for e in journal["entries"]]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def folders(tmp):
    """layout -> folder, each holding the 300 migrations as that tool names and marks them."""
    out = {}
    migrations = statements()
    for layout in ["numbered", "golang-migrate", "dbmate", "sqlx", "flyway", "goose", "prisma"]:
        d = Path(tmp) / layout
        d.mkdir()
        for i, (tag, sql) in enumerate(migrations, start=1):
            name = tag.split("_", 1)[1]
            stamp = (datetime(2024, 1, 1) + timedelta(minutes=i)).strftime("%Y%m%d%H%M%S")
            if layout == "numbered":
                write(d / f"{i:04d}_{name}.sql", sql)
            elif layout == "golang-migrate":
                write(d / f"{i}_{name}.up.sql", sql)
            elif layout == "dbmate":
                write(d / f"{stamp}_{name}.sql", f"-- migrate:up\n{sql}\n-- migrate:down\n")
            elif layout == "sqlx":
                write(d / f"{stamp}_{name}.sql", sql)
            elif layout == "flyway":
                write(d / f"V{i}__{name}.sql", sql)
            elif layout == "goose":
                write(d / f"{stamp}_{name}.sql", f"-- +goose Up\n{sql}\n-- +goose Down\n")
            elif layout == "prisma":
                write(d / f"{stamp}_{name}" / "migration.sql", sql)
        if layout == "prisma":
            write(d / "migration_lock.toml", 'provider = "postgresql"\n')
        out[layout] = d
    return out


def peer(tool):
    r = subprocess.run([str(ROOT / "scripts" / "peers" / "install.sh"), tool], capture_output=True, text=True)
    return r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None


def main():
    rounds = int(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="db-init-bench-formats-")
    dirs = {"drizzle": FIXTURE, **folders(tmp)}
    dbmate, sqlx = peer("dbmate"), peer("sqlx-cli")
    runs = {}
    for layout, d in dirs.items():
        extra = ["--layout", layout] if layout == "sqlx" else []
        runs[f"db-init {layout}"] = (
            lambda d=d, extra=extra: [str(DB_INIT), "migrate", "--migrations", str(d)] + extra, {})
    if dbmate:
        runs["dbmate itself"] = (
            lambda: [dbmate, "--no-dump-schema", "--migrations-dir", str(dirs["dbmate"]), "up"], {})
    if sqlx:
        runs["sqlx-cli itself"] = (
            lambda: [sqlx, "migrate", "run", "--source", str(dirs["sqlx"])], {})
    apply = {k: [] for k in runs}
    noop = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            url = fresh_db("bench_fmt")
            cmd, _ = runs[name]
            # dbmate's driver (lib/pq) asks for TLS unless told otherwise.
            env = {"DATABASE_URL": url + ("?sslmode=disable" if name == "dbmate itself" else "")}
            apply[name].append(run(cmd(), env))
            noop[name].append(run(cmd(), env))
    med = lambda xs: statistics.median(x[0] for x in xs)
    ref_a, ref_n = med(apply["db-init drizzle"]), med(noop["db-init drizzle"])
    print(f"\n{rounds} rounds, interleaved, medians; the synthetic-300 SQL in each format.\n")
    print("| run | apply 300 | vs Drizzle folder | nothing to do | vs Drizzle folder |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        a, n = med(apply[name]), med(noop[name])
        print(f"| {name} | {a:.0f} ms | {a / ref_a:.2f}x | {n:.1f} ms | {n / ref_n:.2f}x |")
    for tool, path in (("dbmate", dbmate), ("sqlx-cli", sqlx)):
        if not path:
            print(f"\n{tool} not measured: scripts/peers/install.sh {tool} failed")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
