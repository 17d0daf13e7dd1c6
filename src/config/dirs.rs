//! Where the migrations folder is when the `migrations` setting is not given: `./migrations`,
//! else drizzle-kit's default `./drizzle` when it holds a Drizzle folder.

use std::path::PathBuf;

use super::{value, ConfigError, Layers};

/// How the migrations folder was found when the `migrations` setting was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirDefault {
    /// Given, or `./migrations` is there.
    No,
    /// `./migrations` is absent and `./drizzle` (drizzle-kit's default `out`) holds a Drizzle
    /// folder: that one is used, and the log says so.
    Drizzle,
    /// Neither is there: the error names both.
    Neither,
}

/// The `migrations` setting, else `./migrations`, else drizzle-kit's default `./drizzle` when
/// it holds a journal or Drizzle v1 migration folders.
pub(super) fn migrations_dir(layers: &Layers) -> Result<(PathBuf, DirDefault), ConfigError> {
    let dir = layers.parse("migrations", value::parse_path)?;
    if layers.get("migrations").is_some() || dir.exists() {
        return Ok((dir, DirDefault::No));
    }
    let drizzle = PathBuf::from("./drizzle");
    let v1 = std::fs::read_dir(&drizzle).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("migration.sql").is_file())
    });
    match v1 || drizzle.join("meta").join("_journal.json").is_file() {
        true => Ok((drizzle, DirDefault::Drizzle)),
        false => Ok((dir, DirDefault::Neither)),
    }
}
