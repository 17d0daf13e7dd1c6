//! `baseline`: record migrations as applied without running them: `--to V` records the
//! pending ones up to V (a database built by `drizzle-kit push` or by hand), `--migration TAG`
//! exactly the ones named (a hotfix applied by hand, drizzle-orm #6191).

use super::{assess, Assessment, MigrateError, Problem, Source};
use crate::config::MigrateSettings;
use crate::pg::{PgError, Session};

/// What to record.
#[derive(Debug, Clone)]
pub enum Targets {
    /// The pending migrations up to and including this one.
    UpTo(usize),
    /// Exactly these, each of which must be pending.
    Only(Vec<usize>),
}

/// The index of the migration `name` names: its version, tag, name or file name.
fn find(source: &Source, name: &str) -> Option<usize> {
    source.migrations.iter().position(|m| {
        m.name == name
            || m.file == name
            || m.version.to_string() == name
            || name.parse::<i64>().ok() == Some(m.version)
    })
}

/// Resolves `--to` / `--migration` before connecting: every name must be a migration of the
/// folder, and all unknown names are reported together.
pub fn targets(
    source: &Source,
    to: Option<&str>,
    only: &[String],
) -> Result<Targets, MigrateError> {
    let unknown = |name: &str| Problem::BaselineTarget {
        target: name.to_string(),
    };
    if let Some(to) = to {
        return find(source, to)
            .map(Targets::UpTo)
            .ok_or_else(|| MigrateError::Validation {
                problems: vec![unknown(to)],
            });
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for name in only {
        match find(source, name) {
            Some(i) if !found.contains(&i) => found.push(i),
            Some(_) => {}
            None => problems.push(unknown(name)),
        }
    }
    MigrateError::validation(problems)?;
    found.sort_unstable();
    Ok(Targets::Only(found))
}

/// Records the targets in one transaction with the rows `run` writes; the caller holds the
/// lock. Refuses while an applied migration changed or went missing, and refuses a named
/// migration that is already recorded. Returns the indices recorded.
pub async fn record(
    session: &Session,
    settings: &MigrateSettings,
    source: &Source,
    targets: &Targets,
) -> Result<Vec<usize>, MigrateError> {
    let Assessment {
        history,
        plan,
        table_exists,
        upgrade,
    } = assess(session, settings, source).await?;
    let pending = plan.pending();
    let mut blocking: Vec<Problem> = plan
        .problems
        .into_iter()
        .filter(|p| matches!(p, Problem::Changed { .. } | Problem::Missing { .. }))
        .collect();
    let record: Vec<usize> = match targets {
        Targets::UpTo(target) => pending.iter().copied().filter(|i| i <= target).collect(),
        Targets::Only(only) => {
            for &i in only.iter().filter(|i| !pending.contains(i)) {
                blocking.push(Problem::BaselineApplied {
                    target: source
                        .migrations
                        .get(i)
                        .map(|m| m.file.clone())
                        .unwrap_or_default(),
                });
            }
            only.clone()
        }
    };
    MigrateError::validation(blocking)?;
    if let (Targets::Only(_), Some(&last)) = (targets, record.last()) {
        for m in pending
            .iter()
            .filter(|&&i| i < last && !record.contains(&i))
            .filter_map(|&i| source.migrations.get(i))
        {
            tracing::warn!(
                migration = %m.file,
                "stays pending and is now older than a recorded migration: `run` applies it only with out_of_order: allow"
            );
        }
    }
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
    for m in record.iter().filter_map(|&i| source.migrations.get(i)) {
        sql.push_str(&history.insert_sql(m, Some(0)));
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT;");
    if let Err(e) = session.batch_execute(&sql).await {
        let _ = session.batch_execute("ROLLBACK").await;
        return Err(PgError::new("recording the baseline", e).into());
    }
    Ok(record)
}
