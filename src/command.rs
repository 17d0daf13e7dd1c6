//! What the commands on one database share: the process's one session, opened on first use and
//! reused (`plan` needs it twice), and stdout, whose write errors are an outcome like any other.

use std::cell::OnceCell;
use std::io::Write;

use crate::config::Config;
use crate::outcome::{Error, Success};
use crate::pg::{self, Session};

/// The session, connecting on the first call.
pub(crate) async fn connect<'a>(
    cfg: &Config,
    cell: &'a OnceCell<Session>,
) -> Result<&'a Session, Error> {
    if let Some(session) = cell.get() {
        return Ok(session);
    }
    let session = pg::connect(cfg.database()?, &cfg.connect).await?;
    Ok(cell.get_or_init(|| session))
}

/// Writes a command's whole output.
pub(crate) fn print(s: &str) -> Result<Success, Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Internal(format!("writing to stdout: {e}")))?;
    Ok(Success::Done)
}
