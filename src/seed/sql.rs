//! SQL seeds: the file as it is, in one transaction with its run record, errors mapped back to
//! line and column. A file with its own top-level transaction control (`BEGIN`, `COMMIT`, ...)
//! runs statement by statement instead, as a migration that controls its own transaction does,
//! and a failure says which of its statements stayed committed.

use std::time::Instant;

use tokio_postgres::error::ErrorPosition;
use tracing::info;

use super::{runs, SeedError, SeedFile, ROLLED_BACK};
use crate::migrate::sql::{self as lex, Stmt};
use crate::pg::{PgError, Session};

pub async fn run(session: &Session, seed: &SeedFile) -> Result<(), SeedError> {
    const PREFIX: &str = "BEGIN;\n";
    let body = seed.sql().strip_prefix('\u{feff}').unwrap_or(seed.sql());
    let bom = seed.sql().len() - body.len();
    let statements = lex::statements(body);
    if let Some(why) = statements
        .iter()
        .find_map(|s| lex::transaction_control(&s.words))
    {
        return run_statement_by_statement(session, seed, &statements, why).await;
    }
    let sql = format!(
        "{PREFIX}{body}\n;\n{};\nCOMMIT;",
        runs::record_sql(seed, None)
    );
    let Err(e) = session.batch_execute(&sql).await else {
        return Ok(());
    };
    let _ = session.batch_execute("ROLLBACK").await;
    if e.as_db_error().is_none() {
        return Err(PgError::new(format!("running {}", seed.name), e).into());
    }
    let place = match error_offset(&sql, &e) {
        Some(at) => seed.at_sent((at + bom).saturating_sub(PREFIX.len())),
        None => seed.name.clone(),
    };
    Err(SeedError::Failed {
        file: seed.name.clone(),
        place,
        error: seed.server_error(&e),
        outcome: ROLLED_BACK.into(),
    })
}

/// Each top-level statement alone (a multi-statement query is an implicit transaction), the
/// file's own BEGIN / COMMIT honoured, then the run record: what commits is what the file says
/// commits.
async fn run_statement_by_statement(
    session: &Session,
    seed: &SeedFile,
    statements: &[Stmt],
    why: &str,
) -> Result<(), SeedError> {
    info!(seed = %seed.name, why, "running outside db-init's transaction, statement by statement");
    let body = seed.sql().strip_prefix('\u{feff}').unwrap_or(seed.sql());
    let bom = seed.sql().len() - body.len();
    let started = Instant::now();
    let total = statements.len();
    let mut done = crate::migrate::sql::Committed::default();
    for (n, stmt) in statements.iter().enumerate() {
        let Some(sql) = body.get(stmt.range.clone()) else {
            continue;
        };
        if let Err(e) = session.batch_execute(sql).await {
            if done.open {
                let _ = session.batch_execute("ROLLBACK").await;
            }
            let at = error_offset(sql, &e).unwrap_or_else(|| lex::leading_blank(sql));
            let applied = match done.count {
                0 => "none of its statements were committed".to_string(),
                k => format!(
                    "partly applied: statements 1..{k} of {total} committed (make the file \
                     idempotent or undo them before the next run)"
                ),
            };
            let unknown = match e.as_db_error() {
                Some(_) => String::new(),
                None => format!(
                    " (the connection was lost before the server answered: whether statement {} took effect is unknown)",
                    n + 1
                ),
            };
            return Err(SeedError::Failed {
                file: seed.name.clone(),
                place: seed.at_sent(bom + stmt.range.start + at),
                error: seed.server_error(&e),
                outcome: format!(
                    "it has its own transaction control and ran statement by statement: {applied}{unknown}; \
                     no seed_runs row was written"
                ),
            });
        }
        done.after(n + 1, &stmt.words);
    }
    let record = runs::record_sql(seed, Some(started.elapsed().as_millis() as u64));
    // A file that leaves its transaction open is committed with its run record.
    let record = match done.open {
        true => format!("{record};\nCOMMIT"),
        false => record,
    };
    if let Err(e) = session.batch_execute(&record).await {
        if done.open {
            let _ = session.batch_execute("ROLLBACK").await;
        }
        return Err(PgError::new(format!("recording the run of {}", seed.name), e).into());
    }
    Ok(())
}

/// Byte offset in `sent` of the server's error position, if it gave one.
fn error_offset(sent: &str, e: &tokio_postgres::Error) -> Option<usize> {
    match e.as_db_error()?.position()? {
        ErrorPosition::Original(p) => Some(
            sent.char_indices()
                .nth((*p as usize).saturating_sub(1))
                .map_or(sent.len(), |(b, _)| b),
        ),
        ErrorPosition::Internal { .. } => None,
    }
}
