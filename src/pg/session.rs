//! The one session db-init works on: the client, its cancel token, and the session settings.

use std::time::Duration;

use std::ops::Range;
use std::sync::Arc;

use super::socket::Via;
use super::tls::Connector;
use tokio_postgres::{CancelToken, Client, SimpleQueryMessage};

use super::PgError;

pub struct Session {
    client: Client,
    cancel: CancelToken,
    tls: Connector,
    /// How this session was opened (the URL's settings, with the startup `options` the server
    /// accepted), for a second connection that checks whether a pooler shares server processes.
    config: tokio_postgres::Config,
    /// The URL with its password replaced, for messages.
    url: String,
    /// Counts the NOTIFYs this session received (see `LISTEN` in the lock wait).
    wakeups: tokio::sync::watch::Receiver<u64>,
    /// Whose socket it is, where it goes, and (db-init's own) where a large statement goes.
    via: Via,
}

impl Session {
    pub(super) fn new(
        client: Client,
        tls: Connector,
        (wakeups, via): (tokio::sync::watch::Receiver<u64>, Via),
        config: tokio_postgres::Config,
        url: String,
    ) -> Session {
        Session {
            cancel: client.cancel_token(),
            client,
            tls,
            wakeups,
            config,
            url,
            via,
        }
    }

    /// The URL this session was opened with, password replaced.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What a second connection to the same place needs.
    pub(super) fn reopen(&self) -> (&tokio_postgres::Config, Connector) {
        (&self.config, self.tls.clone())
    }

    /// How many notifications this session has received so far.
    pub fn wakeups_seen(&self) -> u64 {
        *self.wakeups.borrow()
    }

    /// Waits until more than `seen` notifications have arrived, or `at_most` has passed.
    pub async fn notified_since(&self, seen: u64, at_most: Duration) -> bool {
        let mut wakeups = self.wakeups.clone();
        let woken = tokio::time::timeout(at_most, async {
            wakeups.wait_for(|n| *n > seen).await.is_ok()
        })
        .await;
        woken.unwrap_or(false)
    }

    /// Asks the server to cancel whatever this session is running (over a separate connection).
    pub async fn cancel(&self) -> Result<(), String> {
        super::socket::cancel(&self.config, &self.tls, &self.cancel, &self.via).await
    }

    /// Runs `text[range]` as one query. A large statement is written to the socket from `text`
    /// itself instead of being copied twice more on its way (see `splice`).
    pub async fn execute_shared(
        &self,
        text: &Arc<String>,
        range: Range<usize>,
    ) -> Result<(), tokio_postgres::Error> {
        let sql = text.get(range.clone()).unwrap_or_default();
        let slot = match &self.via {
            Via::Ours { slot, .. } if sql.len() >= super::splice::MIN_BYTES => slot,
            _ => return self.client.batch_execute(sql).await,
        };
        let Some(marker) = slot.arm(text, range) else {
            return self.client.batch_execute(sql).await;
        };
        let result = self.client.batch_execute(&marker).await;
        // Not taken, the server saw the marker and failed on it (42883): nothing ran.
        let sent = slot.disarm();
        tracing::debug!(
            bytes = sql.len(),
            sent,
            "large statement written from the file's text"
        );
        result
    }

    /// Session settings for doing work (migrations, seeds), sent once in one round trip.
    /// `client_connection_check_interval` (PostgreSQL 14+) makes the server stop a statement
    /// whose client died (kill -9, node loss) within a second instead of running it to the
    /// end while holding its locks.
    pub async fn work_settings(
        &self,
        lock_timeout: Option<Duration>,
        statement_timeout: Duration,
    ) -> Result<(), PgError> {
        self.client
            .batch_execute(&work_settings_sql(lock_timeout, statement_timeout))
            .await
            .map_err(|e| PgError::new("setting statement_timeout / lock_timeout", e))
    }
}

/// The statement [`Session::work_settings`] sends (also printed by `plan`).
pub fn work_settings_sql(lock_timeout: Option<Duration>, statement_timeout: Duration) -> String {
    let mut sql = format!("SET statement_timeout = {};", statement_timeout.as_millis());
    if let Some(t) = lock_timeout {
        sql.push_str(&format!(" SET lock_timeout = {};", t.as_millis()));
    }
    sql.push_str(
        " SELECT set_config('client_connection_check_interval', '1000', false) \
         WHERE current_setting('server_version_num')::int >= 140000;",
    );
    sql
}

impl std::ops::Deref for Session {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The first column of the first row of a simple query, as text (`None` for no row or NULL).
pub async fn first_text(
    client: &Client,
    sql: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(column(client, sql).await?.into_iter().next())
}

/// The first column of every row of a simple query, as text.
pub async fn column(client: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect())
}
