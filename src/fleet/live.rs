//! What a run over many databases has open and has done, owned by the command's caller
//! (`app::run`) rather than by the work: when a signal drops the work, every open session is
//! still here to be cancelled, rolled back and unlocked, and the report can still be written.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use super::report::Report;
use crate::pg::Session;

#[derive(Default)]
pub struct Live {
    next: Cell<u64>,
    sessions: RefCell<BTreeMap<u64, Rc<Session>>>,
    report: RefCell<Option<Report>>,
}

/// A session of the run, known to [`Live`] until [`Live::close`].
pub struct Open {
    id: u64,
    pub session: Rc<Session>,
}

impl Open {
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Live {
    /// Registers a new session. It stays registered if the work holding it is dropped (a
    /// signal): only [`Live::close`] forgets it, on the normal way out.
    pub fn open(&self, session: Session) -> Open {
        let id = self.next.get();
        self.next.set(id + 1);
        let session = Rc::new(session);
        self.sessions.borrow_mut().insert(id, Rc::clone(&session));
        Open { id, session }
    }

    /// Forgets the session; dropping the last handle closes it.
    pub fn close(&self, open: Open) {
        self.sessions.borrow_mut().remove(&open.id);
    }

    /// Forgets a session whose job was abandoned (`database_timeout`): dropping the job
    /// dropped its other handle, so the session is closed now.
    pub fn forget(&self, id: u64) {
        self.sessions.borrow_mut().remove(&id);
    }

    /// Every session still open.
    pub fn sessions(&self) -> Vec<Rc<Session>> {
        self.sessions.borrow().values().cloned().collect()
    }

    pub fn set_report(&self, report: Report) {
        *self.report.borrow_mut() = Some(report);
    }

    /// Changes the report, if a run has started one.
    pub fn with_report<T>(&self, f: impl FnOnce(&mut Report) -> T) -> Option<T> {
        self.report.borrow_mut().as_mut().map(f)
    }

    /// After a signal: marks what was running as interrupted and writes the report. Says what
    /// went wrong, if anything did.
    pub fn interrupted(&self, exit_code: u8) -> Option<String> {
        self.with_report(|r| {
            r.close(true);
            tracing::warn!("{}", r.summary());
            r.write(Some(exit_code)).err().map(|e| e.to_string())
        })
        .flatten()
    }
}
