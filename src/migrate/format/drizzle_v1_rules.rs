//! Drizzle v1 (drizzle-orm 1.0.0-rc.5) rules as pure functions: folder names and `created_at`,
//! folder order (`localeCompare`), hashes, the history table's SQL, pending migrations, and the
//! upgrade of a 0.x history table. See `tests/fixtures/drizzle-v1/README.md`.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The error Drizzle throws, before any database access, when `<folder>/meta/_journal.json` exists.
pub const OLD_LAYOUT_MESSAGE: &str = "We detected that you have old drizzle-kit migration folders. You must upgrade drizzle-kit and run \"drizzle-kit up\"";

/// A local migration: folder name, hash of its `migration.sql`, and `created_at` (`folderMillis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMigration {
    /// The folder name, stored as `name`.
    pub name: String,
    /// [`migration_hash`] of the folder's `migration.sql`.
    pub hash: String,
    /// [`ParsedName::created_at_millis`] of the folder name.
    pub created_at_millis: i64,
}

/// A history-table row as read. `name` is `None` when NULL or when the table is still 0.x.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// `id` (SERIAL).
    pub id: i64,
    /// `hash`.
    pub hash: String,
    /// `created_at` (bigint, nullable).
    pub created_at: Option<i64>,
    /// `name` (v1 only).
    pub name: Option<String>,
}

/// `<14 ASCII digits>_<non-empty tag>`: the shape drizzle-kit gives migration folders.
pub fn is_v1_folder_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 15 && b.iter().take(14).all(u8::is_ascii_digit) && b.get(14) == Some(&b'_')
}

/// What Drizzle reads from a folder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedName {
    /// Drizzle's `folderMillis` (UTC, whole seconds): the `created_at` it writes.
    pub created_at_millis: i64,
    /// [`is_v1_folder_name`], year >= 100 and every field in range: the prefix means the
    /// date-time it shows (otherwise Drizzle's `parseInt`/`Date.UTC` quirks decided the value).
    pub canonical: bool,
}

/// A folder name Drizzle turns into `created_at` NaN (its history insert then fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("migration folder {name:?}: its {field} ({text:?}, from the first 14 characters) is not a number, so Drizzle would store created_at NaN and fail; name it <YYYYMMDDHHMMSS>_<name>")]
pub struct NameError {
    /// The folder name.
    pub name: String,
    /// `year`, `month`, `day`, `hour`, `minute` or `second`.
    pub field: &'static str,
    /// The slice `parseInt` was given.
    pub text: String,
}

/// Drizzle's `formatToMillis(name.slice(0, 14))`: `Date.UTC` of six `parseInt` fields (UTF-16
/// slices; leading JS whitespace and a sign accepted, digits up to the first non-digit; years
/// 0-99 mean 1900-1999; out-of-range fields roll over). `Err` exactly where Drizzle gets NaN.
pub fn parse_folder_name(name: &str) -> Result<ParsedName, NameError> {
    const FIELDS: [&str; 6] = ["year", "month", "day", "hour", "minute", "second"];
    let units: Vec<u16> = name.encode_utf16().take(14).collect();
    let mut v = [0i64; 6];
    for (i, (slot, field)) in v.iter_mut().zip(FIELDS).enumerate() {
        let (from, to) = (2 * i + 2 * usize::from(i > 0), 2 * i + 4); // 0..4, 4..6, ... 12..14
        let part = units
            .get(from.min(units.len())..to.min(units.len()))
            .unwrap_or(&[]);
        let text = String::from_utf16_lossy(part);
        *slot = parse_int(part).ok_or_else(|| NameError {
            name: name.into(),
            field,
            text,
        })?;
    }
    let [y, mo, d, h, mi, s] = v;
    // Fields of at most 4 characters keep `Date.UTC` far inside its range: no TimeClip NaN.
    let year = if (0..=99).contains(&y) { 1900 + y } else { y };
    let days = first_of_month(year + (mo - 1).div_euclid(12), (mo - 1).rem_euclid(12) + 1) + d - 1;
    let created_at_millis = days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000;
    let month_len = first_of_month(y + mo / 12, mo % 12 + 1) - first_of_month(y, mo);
    let in_range = (1..=12).contains(&mo) && (1..=month_len).contains(&d) && h < 24 && mi < 60;
    let canonical = is_v1_folder_name(name) && y >= 100 && in_range && s < 60;
    Ok(ParsedName {
        created_at_millis,
        canonical,
    })
}

/// JS `parseInt(s, 10)` on UTF-16 units; `None` is NaN.
fn parse_int(units: &[u16]) -> Option<i64> {
    let is_space = |u: &u16| matches!(u, 0x09..=0x0D | 0x20 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000 | 0xFEFF);
    let mut rest = units.iter().skip_while(|u| is_space(u)).peekable();
    let negative = rest.next_if(|&&u| u == u16::from(b'-')).is_some();
    if !negative {
        rest.next_if(|&&u| u == u16::from(b'+'));
    }
    let digits = rest.map_while(|&u| char::from_u32(u32::from(u))?.to_digit(10));
    let value = digits.fold(None, |v, d| Some(v.unwrap_or(0) * 10 + i64::from(d)))?; // <= 4 digits
    Some(if negative { -value } else { value })
}

/// Days from 1970-01-01 to the 1st of `month` (1-12) of proleptic Gregorian `year`.
fn first_of_month(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let (era, mp) = (y.div_euclid(400), (month + 9) % 12);
    let yoe = y - era * 400;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + (153 * mp + 2) / 5 - 719_468
}

/// Drizzle's `hash`: SHA-256 hex of the file decoded as UTF-8 (invalid sequences become U+FFFD,
/// as `Buffer.toString()` does); equal to SHA-256 of the bytes for valid UTF-8 (BOM, CRLF kept).
pub fn migration_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(String::from_utf8_lossy(bytes).as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// ASCII characters with a primary weight in ICU root / `en-US` collation, lowest first (case
/// is tertiary; other ASCII controls are ignorable). Checked against Node 20 (ICU 78.2).
const ASCII_ORDER: &[u8] =
    b"\t\n\x0b\x0c\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";

/// Per character: (primary, uppercase, ascii); ignorable ASCII controls omitted. Non-ASCII
/// characters get made-up primaries after all ASCII ones (not Drizzle's: see [`drizzle_cmp`]).
fn collation_keys(s: &str) -> Vec<(u32, bool, bool)> {
    let rank = |c: char| {
        ASCII_ORDER
            .iter()
            .position(|&b| char::from(b) == c.to_ascii_lowercase())
    };
    s.chars()
        .filter_map(|c| match (c.is_ascii(), rank(c)) {
            (true, Some(p)) => Some((p as u32, c.is_ascii_uppercase(), true)),
            (true, None) => None,
            (false, _) => Some((0x100 + u32::from(c), false, false)),
        })
        .collect()
}

/// Order and whether it is provably Drizzle's (decided by ASCII characters only).
fn collate(a: &str, b: &str) -> (Ordering, bool) {
    let (ka, kb) = (collation_keys(a), collation_keys(b));
    let mut i = 0;
    while let (Some(x), Some(y)) = (ka.get(i), kb.get(i)) {
        if x.0 != y.0 {
            break;
        }
        i += 1;
    }
    let (pa, pb) = (ka.get(i).map(|k| k.0), kb.get(i).map(|k| k.0));
    if pa != pb {
        // Deciding characters and the ones after them ASCII: no combining mark or contraction.
        let ascii = |k: &[(u32, bool, bool)]| k.iter().take(i + 2).all(|k| k.2);
        return (pa.cmp(&pb), ascii(&ka) && ascii(&kb));
    }
    let tertiary = ka.iter().map(|k| k.1).cmp(kb.iter().map(|k| k.1));
    let exact = a.is_ascii() && b.is_ascii();
    (tertiary.then_with(|| a.cmp(b)), exact)
}

/// Drizzle's folder order: `a.localeCompare(b)` (ICU, `en-US`/root: `_` < `-` < other
/// punctuation < digits < letters, case ignored but lowercase first on a tie), ties (ICU-equal
/// names) in byte order as `readdirSync` lists them. Exact when both names are ASCII, or when
/// everything up to and just after their first difference is; otherwise a consistent total order
/// (non-ASCII after all ASCII) that may differ from Drizzle's.
pub fn drizzle_cmp(a: &str, b: &str) -> Ordering {
    collate(a, b).0
}

/// Two folder names whose Drizzle order depends on non-ASCII characters (ICU and locale rules
/// this module does not reproduce).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot tell in which order Drizzle runs migration folders {first:?} and {second:?}: it depends on non-ASCII characters, which Drizzle orders by the collation of the locale it runs in; rename one so that they differ earlier (e.g. in the timestamp)")]
pub struct Unorderable {
    /// The name placed first.
    pub first: String,
    /// The name placed second.
    pub second: String,
}

/// Sorts `items` by name into Drizzle's folder order ([`drizzle_cmp`]); `Err` (items still
/// sorted by [`drizzle_cmp`]) when two neighbours' true order cannot be known.
pub fn sort_like_drizzle<T>(items: &mut [T], name: impl Fn(&T) -> &str) -> Result<(), Unorderable> {
    items.sort_by(|x, y| drizzle_cmp(name(x), name(y)));
    match items
        .windows(2)
        .find(|p| matches!(p, [x, y] if !collate(name(x), name(y)).1))
    {
        Some([x, y]) => Err(Unorderable {
            first: name(x).into(),
            second: name(y).into(),
        }),
        _ => Ok(()),
    }
}

/// One row of an upgraded 0.x table: its `id` gets `name` (and `applied_at` NULL).
pub use super::RowMatch as UpgradeMatch;

/// The result of Drizzle's `upToV1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePlan {
    /// One per row, in `id` order (the `UPDATE`s' order).
    pub matches: Vec<UpgradeMatch>,
    /// Indices into the migrations, stably sorted by `created_at_millis`: the order Drizzle
    /// runs pending migrations in an upgrading run (it sorts its array in place).
    pub run_order: Vec<usize>,
}

/// Drizzle refuses the upgrade (changing nothing) when rows match no local migration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("While upgrading your database migrations table we found {} migrations (ids: {}) in the database that do not match any local migration. This means that some migrations were applied to the database but are missing from the local environment", .ids.len(), .ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))]
pub struct UpgradeError {
    /// The unmatched rows' ids, ascending.
    pub ids: Vec<i64>,
}

/// Drizzle's `upToV1` matching. `rows`: the 0.x table (`id`, `hash`, `created_at`; `name`
/// ignored; any order). `migrations`: every local folder in Drizzle's folder order. Per row,
/// seconds = `created_at` with its last 3 digits zeroed; exactly one migration in that second
/// matches without a hash check; several: the first among them with the row's hash, else none;
/// none (or NULL `created_at`): the last migration with the row's hash, anywhere.
pub fn upgrade_v0(
    rows: &[HistoryRow],
    migrations: &[LocalMigration],
) -> Result<UpgradePlan, UpgradeError> {
    let mut sorted: Vec<(usize, &LocalMigration)> = migrations.iter().enumerate().collect();
    sorted.sort_by_key(|(_, m)| m.created_at_millis);
    let mut by_millis: HashMap<i64, Vec<&LocalMigration>> = HashMap::new();
    let mut by_hash: HashMap<&str, &LocalMigration> = HashMap::new();
    for &(_, m) in &sorted {
        by_millis.entry(m.created_at_millis).or_default().push(m);
        by_hash.insert(&m.hash, m);
    }
    let mut rows: Vec<&HistoryRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.id);
    let (mut matches, mut ids) = (Vec::new(), Vec::new());
    for row in rows {
        let candidates = row
            .created_at
            .and_then(|c| by_millis.get(&(c / 1000 * 1000)));
        let found = match candidates.map(Vec::as_slice) {
            Some([only]) => Some(*only),
            Some(many @ [_, _, ..]) => many.iter().copied().find(|m| m.hash == row.hash),
            _ => by_hash.get(row.hash.as_str()).copied(),
        };
        match found {
            Some(m) => matches.push(UpgradeMatch {
                id: row.id,
                name: m.name.clone(),
            }),
            None => ids.push(row.id),
        }
    }
    if !ids.is_empty() {
        return Err(UpgradeError { ids });
    }
    Ok(UpgradePlan {
        matches,
        run_order: sorted.into_iter().map(|(i, _)| i).collect(),
    })
}

/// `"schema"."table"`, each quoted as Drizzle quotes identifiers (`"` doubled).
fn table_ref(schema: &str, table: &str) -> String {
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", ident(schema), ident(table))
}

/// A string literal that means the same whatever `standard_conforming_strings` is.
fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Drizzle's upgrade statements with the parameters inlined: two `ALTER TABLE`s, then one
/// `UPDATE` per match. Run them in one transaction (Drizzle's `begin`/`commit` not included).
pub fn upgrade_statements(schema: &str, table: &str, matches: &[UpgradeMatch]) -> Vec<String> {
    let t = table_ref(schema, table);
    let mut out = vec![
        format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS \"name\" text"),
        format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS \"applied_at\" timestamp with time zone DEFAULT now()"),
    ];
    out.extend(matches.iter().map(|m| {
        format!(
            "UPDATE {t} SET \"name\" = {}, \"applied_at\" = NULL WHERE \"id\" = {}",
            literal(&m.name),
            m.id
        )
    }));
    out
}

/// Drizzle v1's `CREATE TABLE IF NOT EXISTS` for a new history table, byte for byte as sent.
pub fn create_table_sql(schema: &str, table: &str) -> String {
    format!(
        "\n\t\t\tCREATE TABLE IF NOT EXISTS {} (\n\t\t\t\tid SERIAL PRIMARY KEY,\n\t\t\t\thash text NOT NULL,\n\t\t\t\tcreated_at bigint,\n\t\t\t\tname text,\n\t\t\t\tapplied_at timestamp with time zone DEFAULT now()\n\t\t\t)\n\t\t",
        table_ref(schema, table)
    )
}

/// Drizzle v1's history insert with the parameters inlined; `applied_at` is not sent, so it
/// gets `DEFAULT now()` (the transaction's start, the same for every row of one run).
pub fn insert_sql(schema: &str, table: &str, name: &str, hash: &str, created_at: i64) -> String {
    format!(
        "insert into {} (\"hash\", \"created_at\", \"name\") values({}, {created_at}, {})",
        table_ref(schema, table),
        literal(hash),
        literal(name)
    )
}

/// A recorded name with no local folder while a pending local folder has the row's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    /// The row's `id`.
    pub row_id: i64,
    /// The `name` recorded.
    pub recorded_name: String,
    /// The pending local folder with the same hash (Drizzle will run it again).
    pub local_name: String,
}

/// What Drizzle v1 runs, plus what it silently ignores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingCheck {
    /// Indices into the local migrations, in their order: names not recorded (never hashes).
    pub pending: Vec<usize>,
    /// Recorded names whose folder seems renamed (one entry per pending folder with the hash).
    pub renamed: Vec<Renamed>,
    /// `(id, name)` of rows whose name has no local folder and no pending look-alike.
    pub missing: Vec<(i64, String)>,
    /// Ids of rows with NULL `name` (they count as nothing applied).
    pub unnamed: Vec<i64>,
}

/// Drizzle's `getMigrationsToRun` (a local migration is pending unless its exact name is a
/// recorded non-NULL `name`; an empty name is always pending), plus the anomalies it ignores.
pub fn pending(recorded: &[HistoryRow], local: &[LocalMigration]) -> PendingCheck {
    let recorded_names: HashSet<&str> = recorded.iter().filter_map(|r| r.name.as_deref()).collect();
    let local_names: HashSet<&str> = local.iter().map(|m| m.name.as_str()).collect();
    let mut out = PendingCheck::default();
    let is_pending =
        |m: &LocalMigration| m.name.is_empty() || !recorded_names.contains(m.name.as_str());
    let numbered = local.iter().enumerate();
    out.pending = numbered
        .filter_map(|(i, m)| is_pending(m).then_some(i))
        .collect();
    for row in recorded {
        let Some(name) = row.name.as_deref() else {
            out.unnamed.push(row.id);
            continue;
        };
        if local_names.contains(name) {
            continue;
        }
        let (row_id, recorded_name) = (row.id, name.to_string());
        let same_hash = local.iter().filter(|m| is_pending(m) && m.hash == row.hash);
        let found: Vec<Renamed> = same_hash
            .map(|m| Renamed {
                row_id,
                recorded_name: recorded_name.clone(),
                local_name: m.name.clone(),
            })
            .collect();
        if found.is_empty() {
            out.missing.push((row_id, recorded_name));
        }
        out.renamed.extend(found);
    }
    out
}

#[cfg(test)]
#[path = "drizzle_v1_rules_tests.rs"]
mod tests;
