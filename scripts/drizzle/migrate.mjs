// Run drizzle-orm's own migrate() (node-postgres driver) against a database and report what
// it did as one JSON line on stdout.
//
//   node scripts/drizzle/migrate.mjs --install-dir DIR URL FOLDER [--schema S] [--table T]
//
// DIR is a folder made by scripts/drizzle/install.sh (the last line it prints); it can also be
// given as DB_INIT_DRIZZLE_DIR. drizzle-orm and pg are loaded from DIR/node_modules (with
// createRequire, so neither NODE_PATH nor the current directory matter). Usually called through
// scripts/drizzle/migrate.sh VERSION URL FOLDER [--schema S] [--table T].
//
// Output, one line:
//   {"ok":true,"version":"0.45.4","schema":"drizzle","table":"__drizzle_migrations",
//    "rows_before":0,"rows_after":6,"applied":6}
//   {"ok":false,"version":...,"error":"<message>","error_class":"DrizzleQueryError",
//    "cause":"<PostgreSQL message>","code":"<SQLSTATE>","rows_before":N,"rows_after":M}
// (rows_* = rows in the history table, 0 when it does not exist; on error they are given when
// they could be counted.) Exit 0 on success, 1 on any error, 2 on a usage error.
//
// migrate() is called the same way for drizzle-orm 0.45.4 and 1.0.0-rc.5:
//   migrate(drizzle({ client }), { migrationsFolder, migrationsTable?, migrationsSchema? })
// (0.x: folder with meta/_journal.json; v1: <timestamp>_<name>/migration.sql folders.)
// The connection's application_name is "drizzle-migrate" unless the URL sets one.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

function out(obj, code) {
  process.stdout.write(JSON.stringify(obj) + "\n");
  process.exit(code);
}

function usage(msg) {
  out({
    ok: false,
    error: `${msg}; usage: node migrate.mjs --install-dir DIR URL FOLDER [--schema S] [--table T]`,
  }, 2);
}

const args = process.argv.slice(2);
const positional = [];
const opts = { installDir: process.env.DB_INIT_DRIZZLE_DIR, schema: undefined, table: undefined };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const m = /^--(install-dir|schema|table)(?:=(.*))?$/.exec(a);
  if (m) {
    let v = m[2];
    if (v === undefined) {
      if (i + 1 >= args.length) usage(`${a} needs a value`);
      v = args[++i];
    }
    if (m[1] === "install-dir") opts.installDir = v;
    else opts[m[1]] = v;
  } else if (a.startsWith("--")) {
    usage(`unknown option ${a}`);
  } else {
    positional.push(a);
  }
}
if (positional.length !== 2) usage("expected URL and FOLDER");
if (!opts.installDir) usage("--install-dir (or DB_INIT_DRIZZLE_DIR) is required");
const [url, folderArg] = positional;
const folder = path.resolve(folderArg);
const schema = opts.schema ?? "drizzle";
const table = opts.table ?? "__drizzle_migrations";

const installDir = path.resolve(opts.installDir);
const pkgJson = path.join(installDir, "package.json");
if (!fs.existsSync(pkgJson)) usage(`${installDir} is not an install folder (no package.json)`);
const require = createRequire(pkgJson);

let pg, drizzle, migrate, version;
try {
  pg = require("pg");
  ({ drizzle } = require("drizzle-orm/node-postgres"));
  ({ migrate } = require("drizzle-orm/node-postgres/migrator"));
  // Not require("drizzle-orm/package.json"): its "exports" do not list it.
  const migratorFile = require.resolve("drizzle-orm/node-postgres/migrator");
  let d = path.dirname(migratorFile);
  while (!fs.existsSync(path.join(d, "package.json")) || JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).name !== "drizzle-orm") {
    const up = path.dirname(d);
    if (up === d) throw new Error(`no drizzle-orm package.json above ${migratorFile}`);
    d = up;
  }
  version = JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).version;
} catch (e) {
  out({ ok: false, error: `cannot load drizzle-orm/pg from ${installDir}: ${e.message}` }, 1);
}

const base = { version, schema, table };

function newClient() {
  // Values in the URL (including application_name) win over these.
  return new pg.Client({ connectionString: url, application_name: "drizzle-migrate" });
}

// The row counts use their own application_name, so a server log filtered by the migrating
// session's name shows only what migrate() sent.
function countClient() {
  let u = url;
  try {
    const parsed = new URL(url);
    parsed.searchParams.set("application_name", "drizzle-migrate-count");
    u = parsed.toString();
  } catch (e) {
    // Not a WHATWG-parsable URL: count with the same settings as the migration.
  }
  return new pg.Client({ connectionString: u, application_name: "drizzle-migrate-count" });
}

// Rows in the history table, 0 when it (or its schema) does not exist. Own connection, so the
// migrating session sends nothing but what migrate() sends.
async function countRows() {
  const c = countClient();
  c.on("error", () => {});
  await c.connect();
  try {
    const r = await c.query(
      `select count(*)::int as n from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
      [schema, table],
    );
    if (r.rows[0].n === 0) return 0;
    const q = (s) => '"' + s.replace(/"/g, '""') + '"';
    const rows = await c.query(`select count(*)::int as n from ${q(schema)}.${q(table)}`);
    return rows.rows[0].n;
  } finally {
    await c.end().catch(() => {});
  }
}

function describeError(e) {
  const r = { error: e?.message ?? String(e), error_class: e?.constructor?.name ?? typeof e };
  const cause = e?.cause;
  if (cause && typeof cause === "object") {
    if (cause.message) r.cause = cause.message;
    if (cause.code) r.code = cause.code;
  } else if (e?.code) {
    r.code = e.code;
  }
  return r;
}

let rowsBefore;
try {
  rowsBefore = await countRows();
} catch (e) {
  out({ ok: false, ...base, ...describeError(e) }, 1);
}

const client = newClient();
client.on("error", () => {});
let result;
try {
  await client.connect();
  const cfg = { migrationsFolder: folder };
  if (opts.table !== undefined) cfg.migrationsTable = opts.table;
  if (opts.schema !== undefined) cfg.migrationsSchema = opts.schema;
  const ret = await migrate(drizzle({ client }), cfg);
  result = { ok: true, returned: ret };
} catch (e) {
  result = { ok: false, err: e };
} finally {
  await client.end().catch(() => {});
}

let rowsAfter;
try {
  rowsAfter = await countRows();
} catch (e) {
  if (result.ok) out({ ok: false, ...base, rows_before: rowsBefore, ...describeError(e) }, 1);
}

if (result.ok) {
  const o = { ok: true, ...base, rows_before: rowsBefore, rows_after: rowsAfter, applied: rowsAfter - rowsBefore };
  if (result.returned !== undefined) o.returned = result.returned;
  out(o, 0);
} else {
  const o = { ok: false, ...base, ...describeError(result.err), rows_before: rowsBefore };
  if (rowsAfter !== undefined) o.rows_after = rowsAfter;
  out(o, 1);
}
