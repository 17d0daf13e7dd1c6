//! Online `validate` for seeds: each YAML seed prepared against the live catalog (its table,
//! its columns, its values against their types), so a seed that would fail after the migrations
//! is refused (exit 7) before anything runs. Reads the catalog; writes nothing.

use super::{yaml, SeedError, SeedFile};
use crate::pg::Session;

/// A seed that does not fit the database, or why one could not be checked.
pub struct Checked {
    /// `(file, message)` of each seed that would fail.
    pub problems: Vec<(String, String)>,
    /// `(file, table)` of each seed left unchecked: a pending migration or a SQL seed creates or
    /// alters a table it uses, so only the run can tell.
    pub after_migrations: Vec<(String, String)>,
}

/// `changes(table)` tells whether a pending migration or a SQL seed creates or alters `table`
/// (as written).
pub async fn check(
    session: &Session,
    seeds: &[SeedFile],
    changes: impl Fn(&str) -> bool,
) -> Result<Checked, SeedError> {
    let mut out = Checked {
        problems: Vec::new(),
        after_migrations: Vec::new(),
    };
    for seed in seeds.iter().filter(|s| !s.is_sql() && !s.is_command()) {
        // Its table and its lookups' tables: one that a pending migration or a SQL seed
        // creates or alters is only there after them.
        if let Some(table) = yaml::tables(seed).into_iter().find(|t| changes(t)) {
            out.after_migrations.push((seed.name.clone(), table));
            continue;
        }
        let checked = match yaml::prepare(session, seed).await {
            Ok(prepared) => yaml::check_values(session, seed, &prepared).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => {}
            Err(SeedError::Invalid { file, message } | SeedError::Shape { file, message }) => {
                out.problems.push((file, message))
            }
            Err(SeedError::Failed { place, error, .. }) => out
                .problems
                .push((seed.name.clone(), format!("{place}: {error}"))),
            // The catalog could not be read: a database error, not a seed's (exit 9).
            Err(SeedError::Database(e)) => return Err(SeedError::Records(e)),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
