//! `new NAME`: the next migration file of a numbered folder, named the way the folder already is.

use std::path::{Path, PathBuf};

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
    let v1 = super::layout_v1::folders(dir)?;
    if !v1.is_empty() {
        return create_v1(dir, &slug, &v1);
    }
    let existing: Vec<(i64, usize)> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let digits = file.split('_').next()?.len();
            super::format::parse_numbered(&file).map(|(v, _)| (v, digits))
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

/// `<YYYYMMDDHHMMSS>_<name>/migration.sql` in UTC, at least one second after the newest folder,
/// as `drizzle-kit generate --custom` names it.
fn create_v1(dir: &Path, slug: &str, existing: &[String]) -> Result<PathBuf, NewError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let newest = existing
        .iter()
        .filter_map(|n| super::drizzle_v1::parse_folder_name(n).ok())
        .map(|p| p.created_at_millis)
        .max();
    let at = newest.map_or(now_ms, |n| now_ms.max(n + 1000));
    let folder = dir.join(format!("{}_{slug}", utc_stamp(at / 1000)));
    std::fs::create_dir_all(&folder).map_err(|source| MigrateError::Io {
        path: folder.clone(),
        source,
    })?;
    let file = folder.join("migration.sql");
    let body = format!("-- {slug}\n-- Custom SQL migration file, put your code below! --\n");
    std::fs::write(&file, body).map_err(|source| MigrateError::Io {
        path: file.clone(),
        source,
    })?;
    Ok(file)
}

/// `YYYYMMDDHHMMSS` of a Unix time in UTC (Howard Hinnant's civil-from-days).
fn utc_stamp(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamps() {
        assert_eq!(super::utc_stamp(0), "19700101000000");
        // 2026-11-21T09:08:04Z, the 0.x `when` 1795252084925 that `drizzle-kit up` named so.
        assert_eq!(super::utc_stamp(1_795_252_084), "20261121090804");
    }
}
