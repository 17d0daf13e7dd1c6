//! Reads a migrations folder into migrations with the format that claims it (`format/`), then
//! applies the settings every format shares, with every problem and warning of the folder at once.

use std::path::{Path, PathBuf};

use super::migration::{Migration, Outside};
use super::{MigrateError, Problem, Warning};
use crate::config::MigrateSettings;

pub use crate::config::Layout;

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
    let folder = super::format::Folder::read(dir)?;
    let ambiguous = match settings.format {
        Some(_) => None,
        None => super::format::ambiguous(&folder),
    };
    let format = match settings.format {
        Some(layout) => super::format::of(layout),
        None => super::format::detect(&folder),
    };
    let mut source = Source {
        layout: format.layout(),
        dir: dir.to_path_buf(),
        migrations: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(candidates) = ambiguous {
        source
            .problems
            .push(Problem::AmbiguousFormat { candidates });
        return Ok(source);
    }
    format.load(&mut source, folder, settings)?;
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

/// The plain files of a folder, sorted by name.
pub(super) fn sorted_files(dir: &Path) -> Result<Vec<String>, MigrateError> {
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
