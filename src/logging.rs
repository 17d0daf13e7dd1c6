//! Logs on stderr (stdout is for command output), as text or JSON, level from the settings or
//! `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// `level` is `--log-level` / `DB_INIT_LOG_LEVEL` / the file; `RUST_LOG` applies when none is set.
pub fn init(format: LogFormat, level: Option<&str>) {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level).ok(),
        None => EnvFilter::try_from_default_env().ok(),
    }
    .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
