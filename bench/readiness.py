"""Readiness: how long after the server can first be reached each waiter exits.

Called by bench/run.sh with a temp server in PG_TEMP_*. Each round stops the server, starts
every waiter at once (db-init wait, dbmate wait, sqlx-cli, and the loop teams script today:
`until pg_isready; do sleep 1; done`), waits 2 to 3 s (at random, so that no waiter's fixed
period lines up with the server's start) so every schedule has backed off as it would in a
real start, then starts the server. A poller runs the real pg_isready back to back; its
first success is the moment the server was ready. Every waiter's exit is stamped by a thread
blocked in wait(), all on one monotonic clock. Prints the medians as a Markdown table."""

import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_INIT = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "db-init"
PG_BIN = Path(os.environ["PG_BIN"])
PORT = os.environ["PG_TEMP_PORT"]
URL = f"postgres://postgres@127.0.0.1:{PORT}/bench_ready"
ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


def peer(tool):
    """The peer's executable, installed by scripts/peers/install.sh; None when it cannot be."""
    r = subprocess.run([str(ROOT / "scripts" / "peers" / "install.sh"), tool], capture_output=True,
                       text=True)
    if r.returncode != 0:
        print(f"({tool} not measured: {r.stderr.strip()[-200:]})", file=sys.stderr)
        return None
    return r.stdout.strip().splitlines()[-1]


def waiters(empty_dir):
    isready = f"{PG_BIN}/pg_isready -q -h 127.0.0.1 -p {PORT}"
    w = {"db-init wait": [str(DB_INIT), "wait", "--database-url", URL],
         "pg_isready loop (sleep 1)": ["sh", "-c", f"until {isready}; do sleep 1; done"]}
    dbmate = peer("dbmate")
    if dbmate:
        w["dbmate wait (2.36.0)"] = [dbmate, "--url", URL + "?sslmode=disable", "--wait-timeout", "30s",
                                     "wait"]
    sqlx = peer("sqlx-cli")
    if sqlx:
        w["sqlx migrate info (sqlx-cli 0.9.0)"] = [sqlx, "migrate", "info", "--source", str(empty_dir),
                                                   "--database-url", URL, "--connect-timeout", "30"]
    return w


def ctl(*args):
    data = Path(os.environ["PG_TEMP_DIR"]) / "data"
    log = Path(os.environ["PG_TEMP_DIR"]) / "server.log"
    cmd = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log)] + list(args)
    if os.environ.get("PG_RUN_AS"):
        cmd = ["runuser", "-u", os.environ["PG_RUN_AS"], "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def one_round(tools):
    ctl("-w", "-m", "fast", "stop")
    exits = {}

    def watch(name, proc):
        code = proc.wait(timeout=60)
        exits[name] = (time.monotonic(), code)

    threads = []
    for name, cmd in tools.items():
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        threads.append(threading.Thread(target=watch, args=(name, proc)))
        threads[-1].start()
    time.sleep(2 + random.random())
    ready = []

    def poll():
        while not ready:
            r = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", PORT])
            if r.returncode == 0:
                ready.append(time.monotonic())

    poller = threading.Thread(target=poll)
    poller.start()
    ctl("-W", "start")
    poller.join(timeout=60)
    for t in threads:
        t.join(timeout=60)
    for name, (_, code) in exits.items():
        if code != 0:
            sys.exit(f"{name} exited {code}")
    return {name: (at - ready[0]) * 1000 for name, (at, _) in exits.items()}


def main():
    rounds = max(9, int(sys.argv[1]))
    subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-d", URL.replace("bench_ready", "postgres"), "-c",
                    "DROP DATABASE IF EXISTS bench_ready", "-c", "CREATE DATABASE bench_ready"], check=True,
                   env=ENV, stdout=subprocess.DEVNULL)
    empty = Path(os.environ["PG_TEMP_DIR"]) / "empty-migrations"
    empty.mkdir(exist_ok=True)
    tools = waiters(empty)
    results = {name: [] for name in tools}
    for _ in range(rounds):
        for name, ms in one_round(tools).items():
            results[name].append(ms)
    base = statistics.median(results["db-init wait"])
    print(f"\nReadiness, {rounds} rounds (every waiter started 2-3 s before the server, all in the same "
          f"restart), median ms from the first successful `pg_isready` to the waiter's exit:\n")
    print("| waiter | median | min | max | db-init / waiter |")
    print("| --- | --- | --- | --- | --- |")
    for name, xs in results.items():
        med = statistics.median(xs)
        ratio = f"{base / med:.2f}x" if med > 0 else "-"
        print(f"| {name} | {med:.0f} ms | {min(xs):.0f} ms | {max(xs):.0f} ms | {ratio} |")
    print(f"\n| measure | value | target |\n| --- | --- | --- |\n"
          f"| readiness: first `pg_isready` -> `db-init wait` exits | {base:.0f} ms | < 100 ms |")
    shutil.rmtree(empty, ignore_errors=True)


main()
