//! SIGTERM / SIGINT at any moment, also as PID 1 (where the kernel installs no default
//! handlers): cancel the running statement on the server, roll back, release the lock, exit.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::warn;

use crate::db::Session;
use crate::exit::{code, Error};

/// The session of the running job, shared with the signal path so that it can clean up after
/// the job's future has been dropped.
#[derive(Clone, Default)]
pub struct SessionSlot(Rc<RefCell<Option<Rc<Session>>>>);

impl SessionSlot {
    pub fn set(&self, session: Rc<Session>) {
        *self.0.borrow_mut() = Some(session);
    }

    fn take(&self) -> Option<Rc<Session>> {
        self.0.borrow_mut().take()
    }
}

/// Runs `job` until it finishes or a signal arrives; on a signal the job is dropped and its
/// session cleaned up within the 2 s that Kubernetes and Compose users expect.
pub async fn run_interruptible<T>(
    slot: &SessionSlot,
    job: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Error::Internal(format!(
                "cannot install signal handlers: {e}"
            )))
        }
    };
    let (name, exit) = tokio::select! {
        result = job => return result,
        _ = term.recv() => ("SIGTERM", code::SIGTERM),
        _ = int.recv() => ("SIGINT", code::SIGINT),
    };
    warn!(
        signal = name,
        "interrupted: cancelling the running statement and releasing the lock"
    );
    if let Some(session) = slot.take() {
        let cleanup = async {
            if let Err(e) = session.cancel().await {
                warn!(error = %e, "could not send the cancel request");
            }
            // Queued behind the cancelled statement, on the same session.
            let _ = session.batch_execute("ROLLBACK").await;
            let _ = session
                .batch_execute("SELECT pg_advisory_unlock_all()")
                .await;
        };
        if tokio::time::timeout(Duration::from_millis(1500), cleanup)
            .await
            .is_err()
        {
            warn!("cleanup did not finish in time; closing the connection (the server releases the lock)");
        }
    }
    Err(Error::Interrupted {
        signal: name,
        code: exit,
    })
}
