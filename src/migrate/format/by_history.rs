//! The format an existing history table names, where the folder alone cannot tell: numbered
//! files are also sqlx's, and a Drizzle v1 folder without its lock file is also Prisma's. A
//! database that has exactly one of those tools' tables (and not db-init's reading of the
//! folder's own) is that tool's; two of them are exit 7 naming both, never a guess.

use tokio_postgres::Client;

use super::super::history::History;
use super::super::source::{Layout, Source};
use super::super::{MigrateError, Problem};
use crate::config::MigrateSettings;
use crate::pg::quote::quote_literal;

/// Formats whose folders look like `layout`'s own.
fn alike(layout: Layout) -> &'static [Layout] {
    match layout {
        Layout::Numbered => &[Layout::Sqlx],
        Layout::DrizzleV1 => &[Layout::Prisma],
        _ => &[],
    }
}

/// The folder read again as the format its database's history table names, when the
/// `layout` setting does not say and the folder alone could not tell (`None`: as it is). Called
/// only where the folder's own format found no table of its own.
pub async fn redetect(
    client: &Client,
    settings: &MigrateSettings,
    source: &Source,
) -> Result<Option<Source>, MigrateError> {
    let others = alike(source.layout);
    if settings.format.is_some() || others.is_empty() || !source.problems.is_empty() {
        return Ok(None);
    }
    let exists: Vec<String> = others
        .iter()
        .map(|l| {
            let qualified = History::new(*l, settings).qualified();
            format!("to_regclass({}) IS NOT NULL", quote_literal(&qualified))
        })
        .collect();
    let sql = format!("SELECT concat_ws(',', {})", exists.join(", "));
    let answer = tokio::time::timeout(
        super::super::HISTORY_BOUND,
        crate::pg::first_text(client, &sql),
    )
    .await
    .map_err(|_| MigrateError::Stalled {
        what: "the history tables' lookup",
        waited: super::super::HISTORY_BOUND,
    })?
    .map_err(|e| MigrateError::History(crate::pg::PgError::new("looking for history tables", e)))?
    .unwrap_or_default();
    let found: Vec<Layout> = others
        .iter()
        .zip(answer.split(','))
        .filter(|(_, there)| *there == "t")
        .map(|(l, _)| *l)
        .collect();
    match found.as_slice() {
        [only] => {
            tracing::info!(
                layout = ?only,
                "the folder's files fit two formats: reading it as the one whose history table the database has"
            );
            let mut named = settings.clone();
            named.format = Some(*only);
            super::super::source::load(&source.dir, &named).map(Some)
        }
        [_, _, ..] => {
            let mut source = super::super::source::load(&source.dir, settings)?;
            source
                .problems
                .push(Problem::AmbiguousFormat { candidates: found });
            Ok(Some(source))
        }
        _ => Ok(None),
    }
}
