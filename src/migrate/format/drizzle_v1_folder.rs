//! Reads a Drizzle v1 folder (`<YYYYMMDDHHMMSS>_<name>/migration.sql`) as drizzle-orm 1.0's
//! migrator reads it: which entries count, their order, identity and hash.

use std::path::Path;

use super::drizzle_v1_rules::{parse_folder_name, sort_like_drizzle};
use crate::migrate::migration::Split;
use crate::migrate::read::{read_all, Wanted};
use crate::migrate::source::{io, Source};
use crate::migrate::{MigrateError, Problem, Warning};

/// Every entry of the folder with a `migration.sql` inside: Drizzle's candidates, whatever
/// their names (a name Drizzle cannot parse is refused later, by [`load`]).
pub fn folders(dir: &Path) -> Result<Vec<String>, MigrateError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        // The entry's type comes with the listing; only folders (or links to them) are worth a
        // look inside, which keeps a 0.x folder of 10,000 files from costing 10,000 stats.
        let kind = entry.file_type().map_err(io(dir))?;
        let maybe_folder = kind.is_dir() || kind.is_symlink();
        if maybe_folder && entry.path().join("migration.sql").is_file() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

pub fn load(source: &mut Source, mut names: Vec<String>) -> Result<(), MigrateError> {
    let dir = source.dir.clone();
    if let Err(e) = sort_like_drizzle(&mut names, String::as_str) {
        source.problems.push(Problem::Unorderable {
            message: e.to_string(),
        });
    }
    let mut wanted = Vec::new();
    for name in names {
        let created_at = match parse_folder_name(&name) {
            Ok(parsed) => parsed.created_at_millis,
            Err(e) => {
                source.problems.push(Problem::BadFolderName {
                    name,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        wanted.push(Wanted {
            version: created_at,
            file: format!("{name}/migration.sql"),
            name,
            split: Split::Breakpoints,
        });
    }
    for read in read_all(&dir, wanted) {
        source
            .migrations
            .push(read.map_err(|u| io(&u.path)(u.error))?);
    }
    // Plain .sql files (an old-layout file merged after `drizzle-kit up`): ignored by Drizzle v1.
    for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
        let entry = entry.map_err(io(&dir))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.ends_with(".sql") && entry.file_type().is_ok_and(|t| t.is_file()) {
            source.warnings.push(Warning::NotAMigration { file });
        }
    }
    Ok(())
}
