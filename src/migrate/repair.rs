//! `repair`: accept deliberate edits of applied migrations by re-recording their checksums,
//! only for the migrations named (or all changed ones), refusing while the folder has any
//! other problem, in one transaction. The caller holds the lock.

use super::plan::State;
use super::{assess, Assessment, MigrateError, Problem, Source};
use crate::config::MigrateSettings;
use crate::pg::{PgError, Session};
use tokio_postgres::SimpleQueryMessage;

/// Which changed migrations to repair.
pub enum Targets {
    /// By tag, name, file name or version.
    Named(Vec<String>),
    AllChanged,
}

/// One re-recorded checksum.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Repaired {
    pub file: String,
    pub old: String,
    pub new: String,
}

pub async fn repair(
    session: &Session,
    settings: &MigrateSettings,
    source: &Source,
    targets: &Targets,
) -> Result<Vec<Repaired>, MigrateError> {
    let Assessment {
        history,
        plan,
        upgrade,
        ..
    } = assess(session, settings, source).await?;
    let others: Vec<Problem> = plan
        .problems
        .iter()
        .filter(|p| !matches!(p, Problem::Changed { .. }))
        .cloned()
        .collect();
    MigrateError::validation(others)?;
    let changed: Vec<(usize, String)> = plan
        .entries
        .iter()
        .filter(|e| e.state == State::Changed)
        .filter_map(|e| Some((e.index, e.stored.clone()?)))
        .collect();
    let chosen: Vec<&(usize, String)> = match targets {
        Targets::AllChanged => changed.iter().collect(),
        Targets::Named(names) => {
            let mut chosen = Vec::new();
            let mut unknown = Vec::new();
            for name in names {
                let hit = changed.iter().find(|(i, _)| {
                    let m = &source.migrations[*i];
                    m.name == *name || m.file == *name || m.version.to_string() == *name
                });
                match hit {
                    Some(c) => chosen.push(c),
                    None => unknown.push(Problem::RepairTarget {
                        target: name.clone(),
                    }),
                }
            }
            MigrateError::validation(unknown)?;
            chosen
        }
    };
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(matches) = &upgrade {
        super::upgrade_history(session, &history, matches).await?;
    }
    let mut sql = String::new();
    let mut repaired = Vec::new();
    for (i, old) in chosen {
        let m = &source.migrations[*i];
        sql.push_str(&history.update_checksum_sql(m, old));
        sql.push_str(";\n");
        repaired.push(Repaired {
            file: m.file.clone(),
            old: old.clone(),
            new: m.checksum.clone(),
        });
    }
    // Each UPDATE must change its one row: one that changes none would report a repair that
    // did not happen, so the counts decide between COMMIT and ROLLBACK.
    let counts = async {
        session.batch_execute("BEGIN").await?;
        let messages = session.simple_query(&sql).await?;
        Ok::<Vec<u64>, tokio_postgres::Error>(
            messages
                .iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::CommandComplete(n) => Some(*n),
                    _ => None,
                })
                .collect(),
        )
    }
    .await;
    // One outcome decides between COMMIT and ROLLBACK.
    let checked = match counts {
        Err(e) => Err(PgError::new("re-recording checksums", e).into()),
        Ok(counts) => match repaired
            .iter()
            .zip(counts.iter().chain(std::iter::repeat(&0)))
            .find(|(_, n)| **n != 1)
        {
            Some((r, _)) => Err(MigrateError::RepairMissed {
                file: r.file.clone(),
                table: history.qualified(),
            }),
            None => Ok(()),
        },
    };
    if let Err(e) = checked {
        let _ = session.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    session
        .batch_execute("COMMIT")
        .await
        .map_err(|e| PgError::new("committing the re-recorded checksums", e))?;
    Ok(repaired)
}
