//! goose folders (issue 21).
