//! `new NAME`: the next migration file(s), named as the folder's tool names them and the way
//! the folder already is (each format's [`Format::new_files`] says how).
//!
//! [`Format::new_files`]: super::format::Format::new_files

use std::path::{Path, PathBuf};

use super::migration::Migration;
use super::{MigrateError, Source};
use crate::config::MigrateSettings;

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Io(#[from] MigrateError),
}

/// Creates the next migration as the folder's tool names it (see [`Format::new_files`]):
/// Drizzle 0.x is refused, drizzle-kit keeps its journal.
///
/// [`Format::new_files`]: super::format::Format::new_files
pub fn create(dir: &Path, name: &str, settings: &MigrateSettings) -> Result<PathBuf, NewError> {
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
    let source = super::source::load(dir, settings)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let files = super::format::of(source.layout)
        .new_files(&source, &slug, now_ms)
        .map_err(NewError::Usage)?;
    let mut first = None;
    for (rel, body) in files {
        let path = dir.join(&rel);
        if path.exists() {
            return Err(NewError::Usage(format!(
                "{} already exists",
                path.display()
            )));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, body).map_err(io(&path))?;
        first.get_or_insert(path);
    }
    first.ok_or_else(|| NewError::Usage("no file to create".into()))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError {
    let path = path.to_path_buf();
    move |source| MigrateError::Io { path, source }
}

/// The next version of a folder of `<digits>_...` files: its timestamps' style
/// (`YYYYMMDDHHMMSS`, at least one second after the newest) or the next number, zero-padded to
/// the width the folder already uses. An empty folder starts at `1` padded to `width`, or with a
/// timestamp when `width` is `None` (the tool's default is a timestamp).
pub fn next_version(source: &Source, now_ms: i64, width: Option<usize>) -> Result<String, String> {
    let newest = source.migrations.iter().map(|m| m.version).max();
    let digits = source
        .migrations
        .iter()
        .map(|m| m.file.rsplit('/').next().unwrap_or(&m.file))
        .map(|f| f.bytes().take_while(u8::is_ascii_digit).count())
        .max();
    match (newest, digits) {
        (Some(v), Some(14)) if v >= 19_700_101_000_000 => {
            let at = now_ms.max(civil_millis(v) + 1000);
            Ok(utc_stamp(at / 1000))
        }
        (Some(v), Some(w)) => v.checked_add(1).map(|n| format!("{n:0w$}")).ok_or_else(|| {
            format!("the newest version, {v}, is the largest there is: name the next file yourself")
        }),
        _ => Ok(match width {
            Some(width) => format!("{:0width$}", 1),
            None => utc_stamp(now_ms / 1000),
        }),
    }
}

/// The next timestamp folder name's stamp for a Drizzle v1 or Prisma folder, at least one
/// second after the newest (`existing`: folder names).
pub fn next_stamp(existing: &[Migration], now_ms: i64) -> String {
    let newest = existing.iter().map(|m| m.version).max();
    let at = newest.map_or(now_ms, |n| now_ms.max(n + 1000));
    utc_stamp(at / 1000)
}

/// Unix milliseconds of a `YYYYMMDDHHMMSS` number (the inverse of [`utc_stamp`]).
fn civil_millis(stamp: i64) -> i64 {
    let (y, mo, d) = (
        stamp / 10_000_000_000,
        stamp / 100_000_000 % 100,
        stamp / 1_000_000 % 100,
    );
    let (h, mi, s) = (stamp / 10_000 % 100, stamp / 100 % 100, stamp % 100);
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400) + h * 3600 + mi * 60 + s) * 1000
}

/// `YYYYMMDDHHMMSS` of a Unix time in UTC (Howard Hinnant's civil-from-days).
pub fn utc_stamp(secs: i64) -> String {
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
    fn stamps_read_back() {
        assert_eq!(super::civil_millis(20261121090804), 1_795_252_084_000);
        assert_eq!(super::civil_millis(19700101000000), 0);
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(super::utc_stamp(0), "19700101000000");
        // 2026-11-21T09:08:04Z, the 0.x `when` 1795252084925 that `drizzle-kit up` named so.
        assert_eq!(super::utc_stamp(1_795_252_084), "20261121090804");
    }
}
