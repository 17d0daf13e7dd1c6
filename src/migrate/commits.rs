//! The count of one database's confirmed commits, kept by the applier as each step's answer
//! comes back, read by a run over many databases whose report must be true at every moment.

use std::cell::Cell;
use std::rc::Rc;

use crate::migrate::MigrateError;

/// The migrations of one database whose commit the server confirmed, and those sent whose
/// answer has not come (yet): if it never comes (a lost or stalled connection, a signal),
/// whether they committed is unknown. Shared with the run's report, which may be written at
/// any moment, so that it never says less (or more) than is known.
#[derive(Debug, Default)]
pub struct Commits {
    committed: Cell<usize>,
    in_flight: Cell<usize>,
    changed: Cell<bool>,
}

impl Commits {
    pub fn committed(&self) -> usize {
        self.committed.get()
    }

    /// Migrations sent whose commit is neither confirmed nor known to have failed.
    pub fn unknown(&self) -> usize {
        self.in_flight.get()
    }

    /// Whether anything changed since the last call (the report is rewritten when it did).
    pub fn take_changed(&self) -> bool {
        self.changed.replace(false)
    }

    fn set(&self, committed: usize, in_flight: usize) {
        self.committed.set(committed);
        self.in_flight.set(in_flight);
        self.changed.set(true);
    }
}

tokio::task_local! {
    /// Set by a run over many databases around each database's job; a single run has none.
    pub static COMMITS: Rc<Commits>;
}

/// `n` migrations are about to be sent.
pub(super) fn sending(n: usize) {
    let _ = COMMITS.try_with(|c| c.set(c.committed(), n));
}

/// The server confirmed the commit of the migrations in flight.
pub(super) fn confirmed() {
    let _ = COMMITS.try_with(|c| c.set(c.committed() + c.unknown(), 0));
}

/// The server answered with an error: what was in flight did not commit.
pub(super) fn refused() {
    let _ = COMMITS.try_with(|c| c.set(c.committed(), 0));
}

/// Whether the server answered the step's failure (then it did not commit): a lost connection
/// leaves the step unknown.
pub(super) fn answered(e: &MigrateError) -> bool {
    match e {
        MigrateError::Failed(f) => f.error.sqlstate.is_some(),
        MigrateError::Database(e) => e.source.as_db_error().is_some(),
        _ => true,
    }
}
