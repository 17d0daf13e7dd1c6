//! db-init: parse the command line, load the settings, run the command, map the outcome to the
//! process exit code (`exit.rs` holds the numbers).

use std::process::ExitCode;

use clap::Parser;

use db_init::cli::{Cli, Command};
use db_init::config::{Config, LogFormat};
use db_init::exit;
use db_init::outcome::Error;
use db_init::{app, logging};

/// Runs before `main`, as the C runtime starts the program: the earliest a program can hold
/// a signal (a static binary gets here within microseconds of its exec).
#[used]
#[link_section = ".init_array"]
static HOLD_SIGNALS_AT_START: extern "C" fn() = hold_signals_at_start;

extern "C" fn hold_signals_at_start() {
    db_init::signals::block();
}

fn main() -> ExitCode {
    db_init::job::started();
    let cli = Cli::parse();
    // Where the final error goes even when the settings cannot be loaded.
    let termination_log = cli
        .settings
        .values
        .get("termination_log")
        .cloned()
        .or_else(|| std::env::var("DB_INIT_TERMINATION_LOG").ok())
        .unwrap_or_else(|| "/dev/termination-log".into());
    let config = Config::load(
        cli.settings.values,
        cli.settings.config.as_deref(),
        &|name| std::env::var(name).ok(),
    );
    let result = match config {
        Ok(cfg) => {
            logging::init(cfg.log_format, cfg.log_level.as_deref());
            tracing::debug!(file = ?cfg.file, "configuration: {cfg:?}");
            run(cli.command.unwrap_or(Command::Run), &cfg)
                .inspect_err(|e| app::write_termination_log(&cfg.termination_log, e))
        }
        Err(e) => {
            logging::init(LogFormat::Text, None);
            let e = Error::from(e);
            app::write_termination_log(std::path::Path::new(&termination_log), &e);
            Err(e)
        }
    };
    match result {
        Ok(success) => ExitCode::from(exit::success_code(success)),
        Err(e) => {
            let code = exit::error_code(&e);
            tracing::error!(exit_code = code, "{e}");
            ExitCode::from(code)
        }
    }
}

fn run(command: Command, cfg: &Config) -> Result<db_init::outcome::Success, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(app::run(command, cfg))
}
