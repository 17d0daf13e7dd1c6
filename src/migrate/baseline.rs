//! `baseline --to V`: record migrations up to V as applied without running them (for databases
//! built by `drizzle-kit push` or by hand).

use super::{assess, Assessment, MigrateError, Problem, Source};
use crate::config::MigrateSettings;
use crate::pg::{PgError, Session};

/// The index of the migration `to` names: its version, tag, name or file name.
pub fn target(source: &Source, to: &str) -> Result<usize, MigrateError> {
    source
        .migrations
        .iter()
        .position(|m| {
            m.name == to
                || m.file == to
                || m.version.to_string() == to
                || to.parse::<i64>().ok() == Some(m.version)
        })
        .ok_or_else(|| MigrateError::Validation {
            problems: vec![Problem::BaselineTarget {
                target: to.to_string(),
            }],
        })
}

/// Records the pending migrations up to `target` in one transaction; the caller holds the
/// lock. Refuses while an applied migration changed or went missing.
pub async fn record(
    session: &Session,
    settings: &MigrateSettings,
    source: &Source,
    target: usize,
) -> Result<usize, MigrateError> {
    let Assessment {
        history,
        plan,
        table_exists,
        upgrade,
    } = assess(session, settings, source).await?;
    let record: Vec<usize> = plan
        .pending()
        .into_iter()
        .filter(|&i| i <= target)
        .collect();
    let blocking: Vec<Problem> = plan
        .problems
        .into_iter()
        .filter(|p| matches!(p, Problem::Changed { .. } | Problem::Missing { .. }))
        .collect();
    MigrateError::validation(blocking)?;
    if let Some(matches) = &upgrade {
        super::upgrade_history(session, &history, matches).await?;
    }
    if !table_exists {
        history
            .create(session)
            .await
            .map_err(MigrateError::History)?;
    }
    let mut sql = String::from("BEGIN;\n");
    for &i in &record {
        sql.push_str(&history.insert_sql(&source.migrations[i], Some(0)));
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT;");
    session
        .batch_execute(&sql)
        .await
        .map_err(|e| PgError::new("recording the baseline", e))?;
    Ok(record.len())
}
