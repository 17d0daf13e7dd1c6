//! PostgreSQL: connecting (with TLS), the session and its settings, the advisory lock, telling a
//! session from a pooler's shared connections, the socket and the large statements written
//! through it, quoting, and the one server-error type.

mod connect;
mod error;
pub mod lock;
pub mod pooler;
pub mod quote;
mod session;
mod socket;
mod splice;
pub mod tls;
mod tls_pinned;
mod tls_stream;

pub use connect::{connect, ConnectError};
pub use error::{classify, describe, Failure, PgError, ServerError};
pub use session::{column, first_text, work_settings_sql, Session};
