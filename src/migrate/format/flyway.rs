//! Flyway: `V<version>__<description>.sql` files applied in version order (`_` in a version
//! reads as `.`, versions compare part by part as numbers), then `R__<description>.sql`
//! repeatables, each re-run when its checksum changes; files in subfolders count, as Flyway
//! scans its location recursively. The history is `flyway_schema_history` with Flyway's DDL,
//! one row per run (`installed_rank` counting up, the checksum Flyway's CRC32 of the file's
//! lines), as `flyway migrate` writes it; a failed row stops the run naming `flyway repair`.
//! Flyway's rules for versions, names and checksums are in `flyway_rules.rs`.

use std::cmp::Ordering;
use std::path::Path;

use super::flyway_plan::{plan, Row};
use super::flyway_rules::{self, Name};
use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::{Migration, Outside, Split};
use crate::migrate::plan::{Plan, Policy};
use crate::migrate::read::Wanted;
use crate::migrate::source::{Layout, Source};
use crate::migrate::{MigrateError, Problem, Warning};
use crate::pg::quote::{quote_ident, quote_literal};

const TABLE: &str = "flyway_schema_history";

pub struct Flyway;

pub use flyway_rules::parse_name;

impl Format for Flyway {
    fn layout(&self) -> Layout {
        Layout::Flyway
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.flyway
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        let mut files = Vec::new();
        scripts(&folder.dir, "", &mut files)?;
        let mut named: Vec<(Name, String)> = Vec::new();
        for f in files {
            let base = f.rsplit('/').next().unwrap_or(&f).to_string();
            match parse_name(&base) {
                Some(n) => named.push((n, f)),
                None => match flyway_rules::not_a_migration(&base) {
                    Err(event) => source.problems.push(Problem::Unsupported {
                        file: f,
                        at: None,
                        what: format!(
                            "a Flyway callback ({event}), which Flyway runs during `migrate` and \
                             db-init does not; move what it does into a migration (a repeatable \
                             R__ script re-runs when it changes)"
                        ),
                    }),
                    Ok(why) => source.warnings.push(Warning::Ignored {
                        file: f,
                        why: why.into(),
                    }),
                },
            }
        }
        // Versions in Flyway's order, then repeatables by description.
        named.sort_by(|(a, fa), (b, fb)| flyway_rules::order(a, b).then_with(|| fa.cmp(fb)));
        for pair in named.windows(2) {
            if let [(a, fa), (b, fb)] = pair {
                if flyway_rules::order(a, b) == Ordering::Equal {
                    let file = format!("{fa} and {fb}");
                    source.problems.push(match a {
                        Name::Versioned { .. } => Problem::Duplicate {
                            version: a.key(),
                            file,
                        },
                        Name::Repeatable { description } => Problem::DuplicateRepeatable {
                            description: description.clone(),
                            file,
                        },
                    });
                }
            }
        }
        for (n, file) in &named {
            // Longer than the history's columns: the row could not be written after the script ran.
            let too_long = match n {
                Name::Versioned { version, .. } if version.text.chars().count() > 50 => Some(
                    "its version is longer than the 50 characters of flyway_schema_history.version",
                ),
                _ if file.chars().count() > 1000 => Some(
                    "its path is longer than the 1000 characters of flyway_schema_history.script",
                ),
                _ => None,
            };
            if let Some(what) = too_long {
                source.problems.push(Problem::Unsupported {
                    file: file.clone(),
                    at: None,
                    what: what.into(),
                });
            }
        }
        let wanted = named
            .iter()
            .enumerate()
            .map(|(i, (n, file))| Wanted {
                // The rank in Flyway's order: the shared steps order by it.
                version: i as i64 + 1,
                name: n.key(),
                file: file.clone(),
                split: Split::Statements,
            })
            .collect();
        super::read_into(source, &folder.dir, wanted)?;
        for m in &mut source.migrations {
            let conf = Conf::read(&folder.dir.join(format!("{}.conf", m.file)))?;
            if let Some(encoding) = &conf.encoding {
                source.problems.push(Problem::Unsupported {
                    file: format!("{}.conf", m.file),
                    at: None,
                    what: format!(
                        "`encoding={encoding}`: Flyway reads the script in it, db-init reads UTF-8 \
                         only; convert the script to UTF-8 (its checksum changes: `repair` it)"
                    ),
                });
            }
            let placeholder = conf
                .placeholders
                .then(|| flyway_rules::placeholder(&m.text))
                .flatten();
            if let Some(at) = placeholder {
                let (line, column) = m.line_col(at);
                source.problems.push(Problem::Unsupported {
                    file: m.file.clone(),
                    at: Some((line, column)),
                    what: "a Flyway placeholder (`${...}`), which Flyway replaces before it runs \
                           the script and db-init does not; write the value into the script"
                        .into(),
                });
            }
            m.checksum = flyway_rules::checksum(&m.text).to_string();
            if conf.outside {
                m.outside = Some(Outside::Annotation {
                    text: "executeInTransaction=false",
                });
            }
        }
        Ok(())
    }

    fn shown_version(&self, m: &Migration) -> String {
        // The version as written (`1.1`), not the rank db-init orders by; none for a repeatable.
        match parse_name(m.file.rsplit('/').next().unwrap_or(&m.file)) {
            Some(Name::Versioned { version, .. }) => version.text,
            _ => "repeatable".into(),
        }
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        super::tool_table(settings, TABLE)
    }

    fn migrates_in(&self, settings: &MigrateSettings) -> Option<String> {
        // Flyway's changeCurrentSchemaTo(defaultSchema): `"app",<the path it found>`.
        settings.history_schema.clone()
    }

    fn create_sql(&self, schema: &str, table: &str, qualified: &str) -> String {
        // flyway-database-postgresql, PostgreSQLDatabase.getRawCreateScript (no tablespace),
        // then SchemaHistory.addSchemasMarker when Flyway created the schema itself: rank 0,
        // type SCHEMA, the quoted name as its script. A schema created by this very statement
        // has its catalog row written by this transaction (its xmin is ours).
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\
             \x20   \"installed_rank\" INT NOT NULL,\n\
             \x20   \"version\" VARCHAR(50),\n\
             \x20   \"description\" VARCHAR(200) NOT NULL,\n\
             \x20   \"type\" VARCHAR(20) NOT NULL,\n\
             \x20   \"script\" VARCHAR(1000) NOT NULL,\n\
             \x20   \"checksum\" INTEGER,\n\
             \x20   \"installed_by\" VARCHAR(100) NOT NULL,\n\
             \x20   \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),\n\
             \x20   \"execution_time\" INTEGER NOT NULL,\n\
             \x20   \"success\" BOOLEAN NOT NULL\n\
             );\n\
             ALTER TABLE {qualified} ADD CONSTRAINT {} PRIMARY KEY (\"installed_rank\");\n\
             CREATE INDEX {} ON {qualified} (\"success\");\n\
             INSERT INTO {qualified} (installed_rank, version, description, type, script, checksum, \
             installed_by, execution_time, success) SELECT 0, NULL, '<< Flyway Schema Creation >>', \
             'SCHEMA', {}, NULL, current_user, 0, true FROM pg_namespace WHERE nspname = {} \
             AND xmin::text::bigint = txid_current() % 4294967296;",
            quote_ident(schema),
            quote_ident(&format!("{table}_pk")),
            quote_ident(&format!("{table}_s_idx")),
            quote_literal(&quote_ident(schema)),
            quote_literal(schema),
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        format!(
            "SELECT installed_rank, NULL, coalesce(checksum::text, ''), \
             concat_ws(chr(31), type, CASE WHEN success THEN 't' ELSE 'f' END, coalesce(version, ''), \
             description, script) FROM {qualified} ORDER BY installed_rank"
        )
    }

    fn insert_sql(
        &self,
        _schema: &str,
        _table: &str,
        qualified: &str,
        m: &Migration,
        execution_ms: Option<u64>,
    ) -> String {
        let base = m.file.rsplit('/').next().unwrap_or(&m.file);
        let (version, description) = match parse_name(base) {
            Some(Name::Versioned {
                version,
                description,
            }) => (quote_literal(&version.text), description),
            Some(Name::Repeatable { description }) => ("NULL".into(), description),
            None => ("NULL".into(), m.name.clone()),
        };
        // Measured by the server inside the migration's transaction, as Flyway measures it.
        let took = match execution_ms {
            Some(ms) => ms.min(i32::MAX as u64).to_string(),
            None => "(extract(epoch FROM clock_timestamp() - now()) * 1000)::int".into(),
        };
        // Flyway's JdbcTableSchemaHistory: the next rank, the current user.
        format!(
            "INSERT INTO {qualified} (installed_rank, version, description, type, script, checksum, \
             installed_by, execution_time, success) SELECT coalesce(max(installed_rank), 0) + 1, \
             {version}, {}, 'SQL', {}, {}, current_user, {took}, true FROM {qualified}",
            quote_literal(&flyway_rules::abbreviate(&description)),
            quote_literal(&m.file),
            m.checksum
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("checksum", "version", quote_literal(&m.name))
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        _now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // The next major version after the newest (`V3__x.sql` after `V2_1__y.sql`).
        let newest = source
            .migrations
            .iter()
            .filter_map(|m| parse_name(m.file.rsplit('/').next().unwrap_or(&m.file)))
            .filter_map(|n| n.version().cloned())
            .max();
        let next = match newest {
            None => 1,
            Some(v) => v
                .major()
                .and_then(|m| m.checked_add(1))
                .ok_or_else(|| format!("the newest version, {}, is too large to count on from: name the next file yourself", v.text))?,
        };
        Ok(vec![(
            format!("V{next}__{slug}.sql"),
            format!("-- {slug}\n"),
        )])
    }

    fn look_alike(&self) -> Option<super::LookAlike> {
        Some(super::LookAlike {
            columns: &["installed_rank", "script"],
            tool: "Flyway",
            setting: "history.schema / history.table (Flyway's defaultSchema / table)",
        })
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // Flyway's outOfOrder is false: a pending version below the newest applied fails validation.
        OutOfOrder::Error
    }

    fn tool_lock(&self) -> Option<super::ToolLock> {
        Some(super::ToolLock::Named(flyway_rules::lock_key))
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<super::HistoryUpgrade>) {
        let rows: Vec<Row> = table
            .map(|t| t.rows.iter().filter_map(Row::from_applied).collect())
            .unwrap_or_default();
        (plan(migrations, &rows, policy), None)
    }
}

/// Whether the folder's subfolders hold Flyway scripts.
pub fn in_subfolders(dir: &Path) -> Result<bool, MigrateError> {
    let mut files = Vec::new();
    scripts(dir, "", &mut files)?;
    Ok(files
        .iter()
        .any(|f| f.contains('/') && parse_name(f.rsplit('/').next().unwrap_or(f)).is_some()))
}

/// The `.sql` files under `dir`, relative to it with `/`, as Flyway finds them in its location.
fn scripts(root: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), MigrateError> {
    let dir = root.join(prefix);
    let mut entries: Vec<(String, bool)> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(crate::migrate::source::io(&dir))? {
        let entry = entry.map_err(crate::migrate::source::io(&dir))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    entries.sort();
    for (name, is_dir) in entries {
        let path = match prefix {
            "" => name.clone(),
            p => format!("{p}/{name}"),
        };
        if is_dir {
            scripts(root, &path, out)?;
        } else if name.ends_with(".sql") {
            out.push(path);
        }
    }
    Ok(())
}

/// What a script configuration file (`V1__x.sql.conf`) says.
struct Conf {
    /// `executeInTransaction=false`.
    outside: bool,
    /// `placeholderReplacement` (true unless it says false).
    placeholders: bool,
    /// `encoding` other than UTF-8.
    encoding: Option<String>,
}

impl Conf {
    fn read(path: &Path) -> Result<Conf, MigrateError> {
        let mut conf = Conf {
            outside: false,
            placeholders: true,
            encoding: None,
        };
        if !path.is_file() {
            return Ok(conf);
        }
        let text = std::fs::read_to_string(path).map_err(crate::migrate::source::io(path))?;
        for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
            let (key, value) = (key.trim(), value.trim());
            let no = value.eq_ignore_ascii_case("false");
            match key {
                "executeInTransaction" => conf.outside = no,
                "placeholderReplacement" => conf.placeholders = !no,
                "encoding" if !matches!(value.to_ascii_uppercase().as_str(), "UTF-8" | "UTF8") => {
                    conf.encoding = Some(value.to_string())
                }
                _ => {}
            }
        }
        Ok(conf)
    }
}
