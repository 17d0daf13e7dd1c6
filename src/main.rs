//! db-init: parse the command line, load the settings, run the command, map the outcome to the
//! process exit code (the table is in `exit.rs`).

mod cli;
mod commands;
mod config;
mod db;
mod exit;
mod lock;
mod logging;
mod migrate;
mod seed;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::{Config, LogFormat};
use crate::exit::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::load(&cli.settings, &|name| std::env::var(name).ok());
    match &config {
        Ok(cfg) => {
            logging::init(cfg.log_format, cfg.log_level.as_deref());
            tracing::debug!(file = ?cfg.file, "configuration: {cfg:?}");
        }
        Err(_) => logging::init(LogFormat::Text, cli.settings.log_level.as_deref()),
    }
    let result = config.map_err(Error::from).and_then(|cfg| {
        run(cli.command.unwrap_or(Command::Run), &cfg)
            .inspect_err(|e| write_termination_log(&cfg, e))
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            tracing::error!(exit_code = code, "{e}");
            ExitCode::from(code)
        }
    }
}

fn run(command: Command, cfg: &Config) -> Result<u8, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let slot = signals::SessionSlot::default();
    runtime.block_on(signals::run_interruptible(
        &slot,
        commands::dispatch(command, cfg, &slot),
    ))
}

/// Kubernetes shows this file in `kubectl describe pod`; only written when it already exists.
fn write_termination_log(cfg: &Config, e: &Error) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&cfg.termination_log)
    {
        let _ = writeln!(f, "db-init: {e}");
    }
}
