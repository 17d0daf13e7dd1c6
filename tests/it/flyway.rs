//! Flyway folders (issue 21).
