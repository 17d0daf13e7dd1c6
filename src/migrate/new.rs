//! `new NAME`: the next migration file of a numbered folder, named the way the folder already is.

use std::path::{Path, PathBuf};

use super::source;
use super::MigrateError;

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Io(#[from] MigrateError),
}

/// Creates `<next version>_<name>.sql`, keeping the zero-padded width the folder already uses.
pub fn create(dir: &Path, name: &str) -> Result<PathBuf, NewError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrateError::Io { path, source }
    };
    if dir.join("meta").join("_journal.json").exists() {
        return Err(NewError::Usage(
            "this is a Drizzle folder: create migrations with `drizzle-kit generate` (or `--custom`) so the journal stays right".into(),
        ));
    }
    let slug: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '_',
        })
        .collect();
    if slug.trim_matches('_').is_empty() {
        return Err(NewError::Usage(format!(
            "migration name {name:?} has no letters or digits"
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let existing: Vec<(i64, usize)> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let digits = file.split('_').next()?.len();
            source::parse_numbered(&file).map(|(v, _)| (v, digits))
        })
        .collect();
    let next = existing.iter().map(|(v, _)| *v).max().map_or(1, |v| v + 1);
    let width = existing.iter().map(|(_, w)| *w).max().unwrap_or(4);
    let file = dir.join(format!("{next:0width$}_{slug}.sql"));
    let body = format!(
        "-- {slug}\n-- Runs in one transaction with its history row; a migration holding CREATE INDEX\n\
         -- CONCURRENTLY or its own BEGIN/COMMIT runs statement by statement outside one.\n\n"
    );
    std::fs::write(&file, body).map_err(io(&file))?;
    Ok(file)
}
