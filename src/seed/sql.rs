//! SQL seeds: the file as it is, in one transaction with its run record, errors mapped back to
//! line and column.

use tokio_postgres::error::ErrorPosition;

use super::{runs, SeedError, SeedFile};
use crate::pg::{PgError, ServerError, Session};
use crate::text;

pub async fn run(session: &Session, seed: &SeedFile) -> Result<(), SeedError> {
    const PREFIX: &str = "BEGIN;\n";
    let body = seed.text.strip_prefix('\u{feff}').unwrap_or(&seed.text);
    let bom = seed.text.len() - body.len();
    let sql = format!("{PREFIX}{body}\n;\n{};\nCOMMIT;", runs::record_sql(seed));
    let Err(e) = session.batch_execute(&sql).await else {
        return Ok(());
    };
    let _ = session.batch_execute("ROLLBACK").await;
    let Some(db) = e.as_db_error() else {
        return Err(PgError::new(format!("running {}", seed.name), e).into());
    };
    let place = match db.position() {
        Some(ErrorPosition::Original(p)) => {
            let at = (*p as usize).saturating_sub(1 + PREFIX.len());
            let byte = body.char_indices().nth(at).map_or(body.len(), |(b, _)| b) + bom;
            let (line, column) = text::line_col(&seed.text, byte);
            format!("{}:{line}:{column}", seed.name)
        }
        _ => seed.name.clone(),
    };
    Err(SeedError::Failed {
        file: seed.name.clone(),
        place,
        error: Box::new(ServerError::from_pg(&e)),
    })
}
