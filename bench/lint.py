#!/usr/bin/env python3
"""The lock analysis beside squawk-cli (npm, exact version), in one run, on the same files.

  bench/lint.py [rounds]      (bench/run.sh lint [rounds] runs it on a throwaway server)

1. Speed: lint of 300 pending migrations (tests/fixtures/drizzle/gen_synthetic.py): squawk on
   the 300 files; db-init `validate --offline` (no catalog) and `plan` against an empty database
   (parse + catalog queries + the SQL it would send). Medians of `rounds`, as ratios.
2. Findings on the same corpus (every .sql of the Drizzle fixture folders): per squawk rule, how
   often squawk reports it, and what db-init says of the same statements (offline, each file's
   own new tables silenced), with the db-init rule the squawk name maps to (src/lint/ids.rs).
3. The static binary's size against the 10 MB budget.
"""
import collections, json, os, re, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/x86_64-unknown-linux-gnu/release/db-init"
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
URL = os.environ.get("PG_TEMP_URL", "")


def squawk():
    out = subprocess.run([str(ROOT / "scripts/peers/install.sh"), "squawk-cli"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t


def squawk_to_ours():
    text = (ROOT / "src/lint/ids.rs").read_text()
    m = {}
    for id_, sq in re.findall(r'r\("([a-z-]+)", &\[([^\]]*)\]', text):
        for name in re.findall(r'"([a-z-]+)"', sq):
            m.setdefault(name, []).append(id_)
    return m


def main():
    sq = squawk()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "synthetic"
        subprocess.run([sys.executable, str(ROOT / "tests/fixtures/drizzle/gen_synthetic.py"),
                        str(folder), "300"], check=True, capture_output=True)
        files = sorted(str(p) for p in folder.glob("*.sql"))
        env = dict(os.environ, DB_INIT_MIGRATIONS=str(folder), DB_INIT_SEEDS=str(Path(tmp) / "none"))
        rows = {"squawk (300 files)": [], "db-init validate --offline": [], "db-init plan (empty database)": []}
        for _ in range(ROUNDS):
            rows["squawk (300 files)"].append(timed([sq, *files]))
            rows["db-init validate --offline"].append(timed([str(BIN), "validate", "--offline"], env=env))
            if URL:
                rows["db-init plan (empty database)"].append(
                    timed([str(BIN), "plan"], env=dict(env, DB_INIT_DATABASE_URL=URL)))
        base = statistics.median(rows["squawk (300 files)"])
        print(f"## Lint of 300 migrations, median of {ROUNDS}\n")
        print("| tool | time | ratio to squawk |\n|---|---|---|")
        for name, ts in rows.items():
            if ts:
                m = statistics.median(ts)
                print(f"| {name} | {m * 1000:.0f} ms | {m / base:.2f}x |")

    # Findings on the fixture corpus.
    ours_of = squawk_to_ours()
    sq_counts, db_counts = collections.Counter(), collections.Counter()
    fx = ROOT / "tests/fixtures"
    folders = sorted({p.parent for p in fx.glob("drizzle*/**/meta/_journal.json")} |
                     {p.parent.parent for p in fx.glob("drizzle*/**/migration.sql")})
    folders = [f.parent if f.name == "meta" else f for f in folders]
    nfiles = 0
    for f in folders:
        files = sorted(str(p) for p in f.rglob("*.sql"))
        nfiles += len(files)
        out = subprocess.run([sq, "--reporter", "json", *files], capture_output=True, text=True).stdout
        try:
            for r in json.loads(out or "[]"):
                sq_counts[r["rule_name"]] += 1
        except json.JSONDecodeError:
            pass
        out = subprocess.run([str(BIN), "validate", "--offline", "--format", "json"],
                             env=dict(os.environ, DB_INIT_MIGRATIONS=str(f), DB_INIT_SEEDS="/nonexistent"),
                             capture_output=True, text=True).stdout
        try:
            for r in json.loads(out or "{}").get("findings", []):
                db_counts[r["rule"]] += 1
        except json.JSONDecodeError:
            pass
    print(f"\n## Findings on the fixture corpus ({len(folders)} folders, {nfiles} files)\n")
    print("| squawk rule | squawk | db-init rule | db-init (offline) |\n|---|---|---|---|")
    for rule, n in sq_counts.most_common():
        ours = ours_of.get(rule, [])
        print(f"| {rule} | {n} | {', '.join(ours) or '(none)'} | {sum(db_counts[o] for o in ours) if ours else '-'} |")
    for rule, n in db_counts.items():
        if not any(rule in v for v in ours_of.values()):
            print(f"| (none) | - | {rule} | {n} |")

    size = BIN.stat().st_size
    print(f"\nStatic binary: {size / 1e6:.1f} MB (budget 10 MB)")


if __name__ == "__main__":
    main()
