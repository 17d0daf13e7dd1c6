//! db-init as a library: the binary (`main.rs`) and the in-process tests use the same modules.

pub mod app;
pub mod cli;
pub mod command;
pub mod config;
pub mod document;
pub mod exit;
pub mod fleet;
pub mod inspect;
pub mod job;
pub mod lint;
pub mod logging;
pub mod migrate;
pub mod outcome;
pub mod pg;
pub mod report;
pub mod retry;
pub mod rule_ids;
pub mod seed;
pub mod signals;
pub mod statement;
pub mod text;
pub mod wait_migrated;
