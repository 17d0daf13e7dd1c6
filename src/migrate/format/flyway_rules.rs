//! Flyway's own rules, as flyway-core applies them: script names (`V<version>__<description>.sql`,
//! `R__<description>.sql`), versions compared part by part as numbers (`1.0` is `1`), the
//! description as stored (`_` as a space, cut to 200 characters), the CRC32 checksum of the
//! file's lines (`ChecksumCalculator`: line ends dropped, a BOM on the first line dropped) and
//! the advisory lock key (`PostgreSQLAdvisoryLockTemplate`). The expected values in the tests
//! were computed by the JDK itself (`scripts/flyway/Expected.java`).

use std::cmp::Ordering;

/// A version as Flyway reads it: `1_1` and `1.1` are both `1.1` (`text`, as stored).
#[derive(Debug, Clone)]
pub struct Version {
    pub text: String,
    /// Each part's digits without leading zeros, so they compare as numbers of any size.
    parts: Vec<String>,
}

impl Version {
    pub fn parse(text: &str) -> Version {
        let text = text.replace('_', ".");
        let parts = text
            .split('.')
            .map(|p| p.trim_start_matches('0').to_string())
            .collect();
        Version { text, parts }
    }

    /// Equal for equal versions (`1.0` and `01` are both `1`): for maps.
    pub fn key(&self) -> String {
        let mut parts: Vec<&str> = self.parts.iter().map(String::as_str).collect();
        while parts.last() == Some(&"") {
            parts.pop();
        }
        parts.join(".")
    }

    /// The first part as a number (`1` of `1.2`; `None` where it does not fit in 64 bits).
    pub fn major(&self) -> Option<u64> {
        match self.part(0) {
            "" => Some(0),
            p => p.parse().ok(),
        }
    }

    fn part(&self, i: usize) -> &str {
        self.parts.get(i).map(String::as_str).unwrap_or("")
    }
}

impl Ord for Version {
    /// MigrationVersion.compareTo: part by part, a missing part is 0.
    fn cmp(&self, other: &Version) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let (a, b) = (self.part(i), other.part(i));
            let c = a.len().cmp(&b.len()).then_with(|| a.cmp(b));
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// What a script's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Versioned {
        version: Version,
        description: String,
    },
    Repeatable {
        description: String,
    },
}

impl Name {
    pub fn version(&self) -> Option<&Version> {
        match self {
            Name::Versioned { version, .. } => Some(version),
            Name::Repeatable { .. } => None,
        }
    }

    /// How db-init names it (the `name` that settings and `repair --migration` take): the
    /// version, or a repeatable's description.
    pub fn key(&self) -> String {
        match self {
            Name::Versioned { version, .. } => version.text.clone(),
            Name::Repeatable { description } => description.clone(),
        }
    }
}

/// `V1_1__add_users.sql` -> version 1.1, "add users"; `R__views.sql` -> repeatable "views".
/// Any other name is not a migration (Flyway passes over it).
pub fn parse_name(file: &str) -> Option<Name> {
    let stem = file.strip_suffix(".sql")?;
    if let Some(rest) = stem.strip_prefix("R__") {
        return Some(Name::Repeatable {
            description: rest.replace('_', " "),
        });
    }
    let rest = stem.strip_prefix('V')?;
    let (version, description) = rest.split_once("__")?;
    let parts_ok = !version.is_empty()
        && version
            .split(['.', '_'])
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    parts_ok.then(|| Name::Versioned {
        version: Version::parse(version),
        description: description.replace('_', " "),
    })
}

/// The SQL callbacks Flyway runs around a `migrate` (`<event>.sql`, `<event>__<what>.sql`):
/// db-init runs none of them, so a folder with one is refused rather than migrated without it.
const MIGRATE_CALLBACKS: &[&str] = &[
    "beforeConnect",
    "afterConnect",
    "beforeValidate",
    "afterValidate",
    "afterValidateError",
    "beforeCreateSchema",
    "createSchema",
    "beforeMigrate",
    "beforeRepeatables",
    "beforeEachMigrate",
    "beforeEachMigrateStatement",
    "afterEachMigrateStatement",
    "afterEachMigrateStatementError",
    "afterEachMigrate",
    "afterEachMigrateError",
    "afterMigrate",
    "afterMigrateApplied",
    "afterVersioned",
    "afterMigrateError",
];

/// What Flyway does with a `.sql` file whose name is not a migration's: `Err(event)` for a
/// callback it runs during `migrate`, `Ok(why)` for one it passes over.
pub fn not_a_migration(file: &str) -> Result<&'static str, &'static str> {
    let stem = file.strip_suffix(".sql").unwrap_or(file);
    let event = stem.split_once("__").map_or(stem, |(e, _)| e);
    if let Some(e) = MIGRATE_CALLBACKS.iter().find(|c| **c == event) {
        return Err(e);
    }
    if stem.starts_with('U') && stem.contains("__") {
        return Ok(
            "an undo migration, which only Flyway's paid editions run, and only on `flyway undo`",
        );
    }
    Ok("not a Flyway migration name (V<version>__<description>.sql or R__<description>.sql), which Flyway passes over")
}

/// Flyway's order: versions first, by number, then repeatables by description.
pub fn order(a: &Name, b: &Name) -> Ordering {
    match (a, b) {
        (Name::Versioned { version: x, .. }, Name::Versioned { version: y, .. }) => x.cmp(y),
        (Name::Versioned { .. }, Name::Repeatable { .. }) => Ordering::Less,
        (Name::Repeatable { .. }, Name::Versioned { .. }) => Ordering::Greater,
        (Name::Repeatable { description: x }, Name::Repeatable { description: y }) => x.cmp(y),
    }
}

/// The description as stored: longer than the column's 200 characters, cut with `...`
/// (Flyway's AbbreviationUtils).
pub fn abbreviate(description: &str) -> String {
    if description.chars().count() <= 200 {
        return description.to_string();
    }
    let cut: String = description.chars().take(197).collect();
    format!("{cut}...")
}

/// ChecksumCalculator: a CRC32 over the UTF-8 bytes of each line as `BufferedReader.readLine`
/// returns it (no `\n`, `\r` or `\r\n`, nothing between lines), a BOM dropped from the first
/// line, read as a signed 32-bit integer.
pub fn checksum(text: &str) -> i32 {
    let mut crc = crc32fast::Hasher::new();
    let first_end = text.find(['\r', '\n']).unwrap_or(text.len());
    let (first, rest) = text.split_at(first_end);
    for piece in [first.strip_prefix('\u{feff}').unwrap_or(first), rest] {
        for line in piece.split(['\r', '\n']) {
            crc.update(line.as_bytes());
        }
    }
    crc.finalize() as i32
}

/// The byte offset of the first placeholder Flyway would replace (`${name}`, its default
/// prefix and suffix, anywhere in the script: Flyway's replacing reader reads the whole text).
pub fn placeholder(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text.get(from..)?.find("${") {
        let start = from + at;
        let rest = text.get(start + 2..)?;
        let end = rest.find('}')?;
        let name = rest.get(..end)?;
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || "_.:-".contains(c))
        {
            return Some(start);
        }
        from = start + 2;
    }
    None
}

/// PostgreSQLAdvisoryLockTemplate: "Flyway" in the high bytes, plus the Java `hashCode` of the
/// table's quoted name (`"public"."flyway_schema_history"`).
pub fn lock_key(_database: &str, schema: &str, table: &str) -> i64 {
    const MAGIC: i64 =
        (0x46 << 40) + (0x6C << 32) + (0x79 << 24) + (0x77 << 16) + (0x61 << 8) + 0x79;
    let quoted = format!("{}.{}", quote(schema), quote(table));
    MAGIC + i64::from(java_hash(&quoted))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_flyway_reads_them() {
        let n = parse_name("V1_1__add_users_table.sql").expect("versioned");
        assert_eq!(n.key(), "1.1");
        assert_eq!(
            n,
            Name::Versioned {
                version: Version::parse("1.1"),
                description: "add users table".into()
            }
        );
        assert_eq!(
            parse_name("R__refresh_views.sql"),
            Some(Name::Repeatable {
                description: "refresh views".into()
            })
        );
        for not in [
            "V1_init.sql",
            "V__x.sql",
            "Va__x.sql",
            "U1__undo.sql",
            "1_init.sql",
            "V1__x.txt",
        ] {
            assert_eq!(parse_name(not), None, "{not}");
        }
    }

    #[test]
    fn versions_compare_as_numbers_part_by_part() {
        let v = |s| Version::parse(s);
        assert!(v("1.10") > v("1.9"));
        assert!(v("2") > v("1.9.9"));
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("01.1"), v("1_1"));
        assert_eq!(v("1.0").key(), v("01").key());
        assert_ne!(v("1.0.1").key(), v("1.1").key());
        assert!(v("20240101120000") > v("9"));
        assert!(v("123456789012345678901234567890") > v("123456789012345678901234567889"));
    }

    #[test]
    fn checksums_as_the_jdk_computes_them() {
        // From scripts/flyway/Expected.java (java.util.zip.CRC32 over readLine's lines).
        let lf = "CREATE TABLE users (id int);\n";
        assert_eq!(checksum(lf), 336540139);
        assert_eq!(
            checksum("\u{feff}CREATE TABLE users (id int);\r\n"),
            336540139
        );
        assert_eq!(checksum("a\n\u{feff}b"), -444179588);
        assert_eq!(checksum(lf), checksum("CREATE TABLE users (id int);"));
        assert_eq!(checksum(lf), checksum("CREATE TABLE users (id int);\r\n"));
        assert_eq!(
            checksum(lf),
            checksum("\u{feff}CREATE TABLE users (id int);\r")
        );
        assert_ne!(checksum("a\nb"), checksum("a\n\u{feff}b"));
        assert_eq!(checksum("a\n\nb\r\n"), checksum("ab"));
        assert_eq!(checksum(""), 0);
    }

    #[test]
    fn a_name_that_is_no_migration_is_a_callback_or_passed_over() {
        assert_eq!(not_a_migration("afterMigrate.sql"), Err("afterMigrate"));
        assert_eq!(
            not_a_migration("beforeEachMigrate__audit.sql"),
            Err("beforeEachMigrate")
        );
        assert!(not_a_migration("U2__drop.sql").is_ok_and(|w| w.contains("undo")));
        assert!(
            not_a_migration("V1_single_underscore.sql").is_ok_and(|w| w.contains("passes over"))
        );
        assert!(not_a_migration("beforeClean.sql").is_ok());
    }

    #[test]
    fn the_lock_key_as_the_jdk_computes_it() {
        // `java scripts/flyway/Expected.java --lock-key <schema> <table>`.
        assert_eq!(
            lock_key("app", "public", "flyway_schema_history"),
            77433833903597
        );
        assert_eq!(lock_key("app", "My\"S", "tbl"), 77429660380270);
    }

    #[test]
    fn placeholders_are_found_where_flyway_replaces_them() {
        assert_eq!(
            placeholder("SET search_path = ${flyway:defaultSchema};"),
            Some(18)
        );
        assert_eq!(placeholder("SELECT '${app_user}'"), Some(8));
        assert_eq!(placeholder("SELECT '$1', $${x y}, '${'"), None);
        assert_eq!(placeholder("no placeholder"), None);
    }

    #[test]
    fn long_descriptions_are_cut_to_the_column() {
        let long = "x".repeat(250);
        let cut = abbreviate(&long);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("..."));
        assert_eq!(abbreviate("short"), "short");
    }
}
