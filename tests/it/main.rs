//! Integration tests: the built binary against a real PostgreSQL server (see `harness`).

mod cli_config;
mod compose;
mod concurrent;
mod documents;
mod drizzle_v1;
mod exit_codes;
mod fleet;
mod harness;
mod hints;
mod journal;
mod large;
mod lint;
mod lock;
mod migrate;
mod network;
mod package;
mod passwords;
mod patterns;
mod pgbouncer;
mod rollback;
mod round_trips;
mod seed;
mod signals;
mod tls;
mod tls_docs;
mod wait;
