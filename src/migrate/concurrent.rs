//! Statements that wait for other transactions rather than for a table lock (`CREATE` /
//! `DROP` / `REINDEX ... CONCURRENTLY`, `DETACH PARTITION ... CONCURRENTLY`): their own wait, with
//! progress and the sessions they wait for in the log, and the INVALID index a failed
//! `CREATE INDEX CONCURRENTLY` leaves, found and dropped before the next try; and the progress
//! line every `progress_interval` that any long migration logs while it runs.

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tracing::{info, warn};

use super::migration::Migration;
use super::MigrateError;
use crate::config::{ConnectSettings, Database};
use crate::pg::quote::quote_literal;
use crate::pg::{self, PgError};

/// How to open a second session that watches a long statement (the first is busy running it).
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    pub db: &'a Database,
    pub connect: &'a ConnectSettings,
    /// How often a long statement's progress is logged (`progress_interval`).
    pub every: Duration,
}

/// A concurrent statement's first progress line comes after this long at most.
const FIRST: Duration = Duration::from_secs(5);
/// A progress query that gets no answer in this long is skipped (the statement goes on).
const QUERY_BOUND: Duration = Duration::from_secs(5);

/// Whether the statement waits for older transactions and snapshots. Such a wait blocks no
/// other session (the statement's own table lock, SHARE UPDATE EXCLUSIVE, lets reads and
/// writes through), so `ddl_lock_timeout`, which exists to keep the app's queries from queueing
/// behind a migration, would only cancel it behind any long transaction in the database.
pub fn waits_for_others(words: &[String]) -> bool {
    matches!(
        super::sql::needs_no_transaction(words),
        Some("… CONCURRENTLY" | "DETACH PARTITION … CONCURRENTLY")
    )
}

/// Runs `sql` with no `lock_timeout`, logging what it waits for while it runs; `lock_timeout`
/// is set back to `ddl_lock_timeout` afterwards.
pub async fn run(
    client: &Client,
    sql: &str,
    ddl_lock_timeout: Duration,
    watch: Option<Watch<'_>>,
) -> Result<(), tokio_postgres::Error> {
    let pid = pg::first_text(client, "SET lock_timeout = 0; SELECT pg_backend_pid()").await?;
    let started = Instant::now();
    let result = {
        let statement = client.batch_execute(sql);
        let pid = pid.as_deref().and_then(|p| p.parse::<i32>().ok());
        let first = watch.map_or(FIRST, |w| w.every.min(FIRST));
        let label = head(sql);
        let progress = report_until_done(pid, &label, watch, started, first);
        tokio::pin!(statement);
        tokio::select! {
            r = &mut statement => r,
            () = progress => statement.await,
        }
    };
    if started.elapsed() >= FIRST {
        info!(
            statement = %head(sql),
            s = started.elapsed().as_secs(),
            ok = result.is_ok(),
            "finished waiting for the statement"
        );
    }
    if result.is_ok() {
        let restore = format!("SET lock_timeout = {}", ddl_lock_timeout.as_millis());
        client.batch_execute(&restore).await?;
    }
    result
}

/// After `first`, then every `watch.every`: what runs (`what`), for how long, its `CREATE
/// INDEX` phase and the sessions it waits for, read from a second session. Never returns while
/// there is something to report; returns at once when there is no way to watch, so the caller
/// just awaits the statement.
pub(super) async fn report_until_done(
    pid: Option<i32>,
    what: &str,
    watch: Option<Watch<'_>>,
    started: Instant,
    first: Duration,
) {
    let (Some(pid), Some(watch)) = (pid, watch) else {
        return std::future::pending().await;
    };
    tokio::time::sleep(first).await;
    let settings = ConnectSettings {
        wait_timeout: QUERY_BOUND,
        ..*watch.connect
    };
    // Every wait here is bounded: a server that stops answering costs a line, not the run.
    let watcher = match tokio::time::timeout(QUERY_BOUND, pg::connect(watch.db, &settings)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            warn!(error = %e, "could not open a session to watch the statement's progress");
            None
        }
        Err(_) => None,
    };
    let query = progress_sql(pid);
    loop {
        let line = match &watcher {
            None => String::new(),
            Some(w) => match tokio::time::timeout(QUERY_BOUND, pg::column(w, &query)).await {
                Ok(Ok(cols)) => cols.into_iter().next().unwrap_or_default(),
                Ok(Err(e)) => format!("progress unknown: {}", pg::describe(&e)),
                Err(_) => "progress unknown: the watching session got no answer".to_string(),
            },
        };
        let s = started.elapsed().as_secs();
        match line.is_empty() {
            true => info!(statement = %what, waited_s = s, "still running after {s} s"),
            false => info!(statement = %what, waited_s = s, "still running after {s} s: {line}"),
        }
        tokio::time::sleep(watch.every).await;
    }
}

/// `work`, with a line every `progress_interval` while it runs (what, how long, the CREATE
/// INDEX phase and the sessions it waits for): a 12 s migration does not go silent.
pub async fn with_progress<T>(
    work: impl std::future::Future<Output = T>,
    pid: Option<i32>,
    what: &str,
    watch: Option<Watch<'_>>,
    started: Instant,
) -> T {
    let first = watch.map_or(Duration::ZERO, |w| w.every);
    let progress = report_until_done(pid, what, watch, started, first);
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => r,
        () = progress => work.await,
    }
}

/// One text line: the `CREATE INDEX` phase and blocks done, and the sessions the statement
/// waits for (their pid, application, state, age and query), read from the catalog views.
pub(super) fn progress_sql(pid: i32) -> String {
    format!(
        "SELECT concat_ws('; ', \
           (SELECT 'phase ' || p.phase || CASE WHEN p.blocks_total > 0 \
              THEN ', blocks ' || p.blocks_done || ' of ' || p.blocks_total ELSE '' END \
              || CASE WHEN p.lockers_total > 0 \
              THEN ', waited for ' || p.lockers_done || ' of ' || p.lockers_total || ' transactions' ELSE '' END \
            FROM pg_stat_progress_create_index p WHERE p.pid = {pid}), \
           (SELECT 'waiting for ' || string_agg(format('pid %s (%s, %s for %s: %s)', b.pid, \
              coalesce(nullif(b.application_name, ''), b.usename::text, '?'), b.state, \
              date_trunc('second', now() - coalesce(b.xact_start, b.query_start)), \
              left(regexp_replace(b.query, '\\s+', ' ', 'g'), 80)), ', ') \
            FROM pg_stat_activity b \
            WHERE b.pid = ANY (pg_blocking_pids({pid})) \
               OR b.pid = (SELECT current_locker_pid FROM pg_stat_progress_create_index WHERE pid = {pid})))"
    )
}

/// The first words of a statement, for the log.
pub(super) fn head(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", one.get(..at).unwrap_or_default()),
        None => one,
    }
}

/// The INVALID indexes a `CREATE INDEX CONCURRENTLY` statement of this migration left behind.
pub async fn invalid_indexes(client: &Client, sql: &str) -> Result<Vec<String>, PgError> {
    let Some(index) = super::sql::concurrent_index(sql) else {
        return Ok(Vec::new());
    };
    // The index lives in its table's schema, whatever the search path: look it up there.
    // An unnamed one gets a generated name, so every INVALID index of the table counts.
    let name_filter = match index.name {
        Some(name) => format!(
            " AND c.relname = {}",
            quote_literal(&super::sql::unquote_ident(name))
        ),
        None => String::new(),
    };
    let check = format!(
        "SELECT string_agg(i.indexrelid::regclass::text, ',') FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = to_regclass({}) AND NOT i.indisvalid{name_filter}",
        quote_literal(index.table)
    );
    let invalid = pg::first_text(client, &check)
        .await
        .map_err(|e| PgError::new(format!("looking for INVALID indexes on {}", index.table), e))?;
    Ok(invalid
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::to_string)
        .collect())
}

/// A failed `CREATE INDEX CONCURRENTLY` leaves an INVALID index behind, and the retry would then
/// fail on "already exists" (or, with IF NOT EXISTS, keep the broken index). Drops such indexes
/// of this migration before it runs.
pub async fn drop_invalid_indexes(
    client: &Client,
    m: &Migration,
    statements: &[(usize, usize, &str)],
) -> Result<(), MigrateError> {
    for (_, _, sql) in statements {
        for index in invalid_indexes(client, sql).await? {
            warn!(migration = %m.file, index = %index, "dropping the INVALID index a failed CREATE INDEX CONCURRENTLY left behind, before running the migration again");
            client
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"))
                .await
                .map_err(|e| PgError::new(format!("dropping the INVALID index {index}"), e))?;
        }
    }
    Ok(())
}

/// What the failure note says about the index a failed statement may have left.
pub async fn left_behind(client: &Client, sql: &str, lost: bool) -> String {
    if super::sql::concurrent_index(sql).is_none() {
        return String::new();
    }
    if lost {
        return " Whether it left an INVALID index is unknown; if it did, the next run drops it first."
            .to_string();
    }
    match invalid_indexes(client, sql).await {
        Ok(found) if found.is_empty() => " It left no INVALID index.".to_string(),
        Ok(found) => format!(
            " It left the INVALID index {}, which the next run drops before it tries again.",
            found.join(", ")
        ),
        Err(_) => {
            " Whether it left an INVALID index is unknown; if it did, the next run drops it first."
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        super::super::sql::statements(sql)
            .into_iter()
            .next()
            .map(|s| s.words)
            .unwrap_or_default()
    }

    #[test]
    fn concurrent_statements_get_their_own_wait_and_others_do_not() {
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (x)",
            "create unique index concurrently if not exists i on t (x)",
            "DROP INDEX CONCURRENTLY i",
            "REINDEX INDEX CONCURRENTLY i",
            "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
        ] {
            assert!(waits_for_others(&words(sql)), "{sql}");
        }
        for sql in [
            "CREATE INDEX i ON t (x)",
            "VACUUM t",
            "ALTER TABLE t ADD COLUMN c int",
        ] {
            assert!(!waits_for_others(&words(sql)), "{sql}");
        }
    }

    #[test]
    fn the_logged_head_is_one_line_of_at_most_80_characters() {
        assert_eq!(
            head("CREATE INDEX\n  CONCURRENTLY i\tON t (x)"),
            "CREATE INDEX CONCURRENTLY i ON t (x)"
        );
        let long = format!("SELECT '{}'", "é".repeat(200));
        assert_eq!(head(&long).chars().count(), 81);
    }
}
