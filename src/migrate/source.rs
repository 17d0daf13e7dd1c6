//! Reads a migrations folder (Drizzle journal or numbered SQL files) into migrations, exactly as
//! Drizzle's migrator would see them, with every problem and warning of the folder at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::migration::{Migration, Outside, Split};
use super::read::{read_all, Wanted};
use super::{MigrateError, Problem, Warning};
use crate::config::{MigrateSettings, Unlisted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Drizzle 0.x: `meta/_journal.json` and `<tag>.sql`.
    Drizzle,
    /// Drizzle 1.0: `<YYYYMMDDHHMMSS>_<name>/migration.sql`, no journal.
    DrizzleV1,
    Numbered,
}

#[derive(Debug)]
pub struct Source {
    pub layout: Layout,
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Problems of the folder itself (exit 7 before connecting).
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

/// Loads the folder. Only an unreadable folder or file is an error here; everything wrong with
/// the folder's content comes back in `problems` and `warnings`, all of it at once.
pub fn load(dir: &Path, settings: &MigrateSettings) -> Result<Source, MigrateError> {
    use crate::config::DirDefault;
    let meta = std::fs::metadata(dir).map_err(|e| match settings.dir_default {
        DirDefault::Neither => io(dir)(std::io::Error::new(
            e.kind(),
            format!(
                "{e}; nor is there ./drizzle (drizzle-kit's default `out` folder) with a Drizzle folder: \
                 set migrations (--migrations, DB_INIT_MIGRATIONS) to your migrations folder"
            ),
        )),
        _ => io(dir)(e),
    })?;
    if settings.dir_default == DirDefault::Drizzle {
        tracing::info!(
            "./migrations is absent: using ./drizzle, drizzle-kit's default folder (set migrations to choose another)"
        );
    }
    if !meta.is_dir() {
        return Err(io(dir)(std::io::Error::other("not a directory")));
    }
    let journal = dir.join("meta").join("_journal.json");
    let mut source = Source {
        layout: Layout::Numbered,
        dir: dir.to_path_buf(),
        migrations: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let v1_folders = super::layout_v1::folders(dir)?;
    if journal.exists() {
        source.layout = Layout::Drizzle;
        if !v1_folders.is_empty() {
            source.layout = Layout::DrizzleV1;
            source.problems.push(Problem::MixedLayout);
            return Ok(source);
        }
        load_drizzle(&mut source, &journal, settings.unlisted_files)?;
    } else if !v1_folders.is_empty() {
        source.layout = Layout::DrizzleV1;
        super::layout_v1::load(&mut source, v1_folders)?;
    } else {
        load_numbered(&mut source)?;
    }
    for m in &mut source.migrations {
        if settings.in_transaction.iter().any(|n| names(m, n)) {
            m.outside = None;
        } else if settings.no_transaction.iter().any(|n| names(m, n)) {
            m.outside = Some(Outside::Setting);
        }
        if let Some(at) = m.invalid_utf8_at {
            let (line, column) = m.line_col(at);
            source.warnings.push(Warning::InvalidUtf8 {
                file: m.file.clone(),
                line,
                column,
            });
        }
    }
    Ok(source)
}

/// Whether a setting's entry names `m`: by tag / name, or file name.
fn names(m: &Migration, entry: &str) -> bool {
    m.name == entry || m.file == entry
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError {
    let path = path.to_path_buf();
    move |source| MigrateError::Io { path, source }
}

#[derive(serde::Deserialize)]
struct Journal {
    entries: Vec<JournalEntry>,
}

#[derive(serde::Deserialize)]
struct JournalEntry {
    #[serde(default)]
    idx: Option<i64>,
    tag: String,
    when: i64,
}

fn load_drizzle(
    source: &mut Source,
    journal_path: &Path,
    unlisted: Unlisted,
) -> Result<(), MigrateError> {
    let dir = source.dir.clone();
    let bytes = std::fs::read(journal_path).map_err(io(journal_path))?;
    let journal: Journal = match serde_json::from_slice(&bytes) {
        Ok(j) => j,
        Err(e) => {
            source.problems.push(Problem::BadJournal {
                file: journal_path.display().to_string(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            });
            return Ok(());
        }
    };
    let order: Vec<_> = journal
        .entries
        .iter()
        .map(|e| super::journal::Entry {
            idx: e.idx,
            tag: &e.tag,
            when: e.when,
        })
        .collect();
    source
        .warnings
        .extend(super::journal::branch_conflicts(&order));
    let mut tags = HashSet::new();
    let mut whens = HashSet::new();
    let mut listed = HashSet::new();
    let mut wanted = Vec::new();
    for entry in &journal.entries {
        let file = format!("{}.sql", entry.tag);
        listed.insert(file.clone());
        if !is_plain_file_name(&entry.tag) {
            source.problems.push(Problem::BadTag {
                tag: entry.tag.clone(),
            });
            continue;
        }
        if !tags.insert(entry.tag.as_str()) {
            source.problems.push(Problem::Duplicate {
                version: format!("tag {}", entry.tag),
                file,
            });
            continue;
        }
        if !whens.insert(entry.when) {
            source.problems.push(Problem::Duplicate {
                version: format!("when {}", entry.when),
                file,
            });
            continue;
        }
        wanted.push(Wanted {
            version: entry.when,
            name: entry.tag.clone(),
            file,
            split: Split::Breakpoints,
        });
    }
    for read in read_all(&dir, wanted) {
        match read {
            Ok(m) => source.migrations.push(m),
            Err(u) if u.error.kind() == std::io::ErrorKind::NotFound => {
                source.problems.push(Problem::NoFileForEntry {
                    tag: u.wanted.name,
                    file: u.wanted.file,
                })
            }
            Err(u) => return Err(io(&u.path)(u.error)),
        }
    }
    for name in sorted_files(&dir)? {
        if name.ends_with(".sql") && !listed.contains(&name) {
            match unlisted {
                Unlisted::Warn => source.warnings.push(Warning::NotInJournal { file: name }),
                Unlisted::Error => source.problems.push(Problem::NotInJournal { file: name }),
            }
        }
    }
    Ok(())
}

/// A tag names `<tag>.sql` in the folder itself: no separators, no `..`, nothing absolute.
fn is_plain_file_name(tag: &str) -> bool {
    !tag.is_empty()
        && tag != "."
        && tag != ".."
        && !tag.contains(['/', '\\', '\0'])
        && Path::new(tag).components().count() == 1
}

fn load_numbered(source: &mut Source) -> Result<(), MigrateError> {
    let dir = source.dir.clone();
    let subfolders = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count();
    let mut seen: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let mut wanted = Vec::new();
    for name in sorted_files(&dir)? {
        if name.starts_with('.') || name.ends_with(".down.sql") {
            continue;
        }
        let Some((version, rest)) = parse_numbered(&name) else {
            let digits = name.split('_').next().unwrap_or("");
            let too_large = name.ends_with(".sql")
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit());
            source.problems.push(match too_large {
                true => Problem::VersionTooLarge { file: name.clone() },
                false => Problem::UnexpectedFile { file: name.clone() },
            });
            continue;
        };
        if let Some(other) = seen.get(&version) {
            source.problems.push(Problem::Duplicate {
                version: version.to_string(),
                file: format!("{other} and {name}"),
            });
            continue;
        }
        seen.insert(version, name.clone());
        wanted.push(Wanted {
            version,
            name: rest.to_string(),
            file: name,
            split: Split::Statements,
        });
    }
    for read in read_all(&dir, wanted) {
        source
            .migrations
            .push(read.map_err(|u| io(&u.path)(u.error))?);
    }
    source.migrations.sort_by_key(|m| m.version);
    // A folder of folders that are not Drizzle v1 migrations is no layout db-init knows: never
    // a silent success with nothing applied.
    if source.migrations.is_empty() && source.problems.is_empty() && subfolders > 0 {
        source.problems.push(Problem::UnknownLayout);
    }
    Ok(())
}

/// `0001_init.sql` -> (1, "init"). The version is all digits and fits an i64.
pub fn parse_numbered(file: &str) -> Option<(i64, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name))
}

/// The plain files of a folder, sorted by name.
fn sorted_files(dir: &Path) -> Result<Vec<String>, MigrateError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert_eq!(parse_numbered("0001_init.sql"), Some((1, "init")));
        assert_eq!(
            parse_numbered("20250101120000_add_users.sql"),
            Some((20250101120000, "add_users"))
        );
        assert_eq!(parse_numbered("init.sql"), None);
        assert_eq!(parse_numbered("0001.sql"), None);
        assert_eq!(parse_numbered("01a_x.sql"), None);
    }

    #[test]
    fn tags_must_be_plain_file_names() {
        assert!(is_plain_file_name("0000_light_mephisto"));
        for bad in ["../outside", "/etc/passwd", "a/b", "..", ".", "", "a\\b"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
