//! The lock analysis: before a pending migration takes its locks, each statement is read with
//! PostgreSQL's own grammar (`rules.rs`), and what it would do is judged against the live tables
//! (`catalog.rs`): a new or empty table silences a finding that a large one makes loud.

pub mod catalog;
pub mod rules;
