//! Reading the seeds folder: which files are seeds, in which order, and their checksums; the
//! shape of every YAML seed is checked here, before anything connects.

use std::path::Path;

use tracing::warn;

use super::vars::{self, Resolver, Source, Var};
use super::vars_sql::{self, Sent};
use super::{yaml, SeedError};
use crate::config::SeedFolder;
use crate::pg::ServerError;
use crate::text;

#[derive(Debug, Clone)]
pub struct SeedFile {
    pub name: String,
    /// Where it is (a command seed is run from there).
    pub path: std::path::PathBuf,
    /// The file as read, `${NAME}` tokens and all: what `plan` shows.
    pub text: String,
    /// Of the text and of the values substituted into it (their hashes: see `vars::checksum`).
    pub checksum: String,
    /// The values of its `${...}` tokens, resolved when the folder was read.
    pub(super) vars: Vec<Var>,
    /// A SQL seed: the text sent, its tokens replaced by quoted literals.
    pub(super) sent: Sent,
}

impl SeedFile {
    pub fn is_sql(&self) -> bool {
        self.name.ends_with(".sql")
    }

    /// An executable `*.sh`: run as a command, after the SQL and YAML seeds of its folder.
    pub fn is_command(&self) -> bool {
        self.name.ends_with(".sh")
    }

    /// A SQL seed's text as sent to the server.
    pub(super) fn sql(&self) -> &str {
        &self.sent.text
    }

    /// `file:line:column` of a byte offset in the text sent.
    pub(super) fn at_sent(&self, offset: usize) -> String {
        let (line, column) = text::line_col(&self.text, self.sent.file_offset(offset));
        format!("{}:{line}:{column}", self.name)
    }

    /// The server's error, with no substituted value in it.
    pub(super) fn server_error(&self, e: &tokio_postgres::Error) -> Box<ServerError> {
        Box::new(vars::redact(&self.vars, ServerError::from_pg(e)))
    }

    /// This seed as `plan` shows it: each value replaced by its `${...}` token.
    pub(super) fn shown(&self) -> SeedFile {
        let mut shown = self.clone();
        for v in &mut shown.vars {
            v.value.clone_from(&v.token);
        }
        shown
    }

    /// The file read: its tokens resolved from the environment (a missing one is an error
    /// naming `file:line:column`, before anything connects) and its shape checked.
    fn read(name: String, path: &Path, text: String) -> Result<SeedFile, SeedError> {
        let mut resolver = Resolver::new(Source::Env(&vars::process_env));
        let mut seed = SeedFile {
            name,
            path: path.to_path_buf(),
            text,
            checksum: String::new(),
            vars: Vec::new(),
            sent: Sent::default(),
        };
        let failed = |seed: &SeedFile, at: usize, message: String| {
            let (line, column) = text::line_col(&seed.text, at);
            SeedError::Shape {
                file: format!("{}:{line}:{column}", seed.name),
                message,
            }
        };
        if seed.is_command() {
            // Its own environment is its business: a shell expands ${NAME} itself.
        } else if seed.is_sql() {
            seed.sent = vars_sql::substitute(&seed.text, &mut resolver)
                .map_err(|(at, m)| failed(&seed, at, m))?;
        } else {
            yaml::check(&seed, &mut resolver).map_err(|e| match e {
                yaml::Checked::Shape(e) => e,
                yaml::Checked::Var(written, m) => {
                    let at = seed.text.find(&written).unwrap_or(0);
                    failed(&seed, at, m)
                }
            })?;
        }
        seed.vars = resolver.vars;
        seed.checksum = vars::checksum(&seed.text, &seed.vars);
        Ok(seed)
    }
}

/// The seed files: the folder's own in lexical order (an absent folder means none), then each
/// set's (`<folder>/<set>/`, which must exist), named by their path within the folder
/// (`staging/users.yaml`), so same-named files of two sets are two seeds with two records.
pub fn load(folder: &SeedFolder) -> Result<Vec<SeedFile>, SeedError> {
    let mut seeds = files(&folder.path, "", true)?;
    for set in &folder.sets {
        seeds.extend(files(&folder.path.join(set), &format!("{set}/"), false)?);
    }
    Ok(seeds)
}

/// The seeds directly in `dir`, their names prefixed with `prefix`.
fn files(dir: &Path, prefix: &str, optional: bool) -> Result<Vec<SeedFile>, SeedError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeedError::Io { path, source }
    };
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let why = format!(
                "seed_sets names `{}`, which has no folder there",
                prefix.trim_end_matches('/')
            );
            return Err(io(dir)(std::io::Error::new(e.kind(), why)));
        }
        Err(e) => return Err(io(dir)(e)),
    };
    let mut names = Vec::new();
    let mut commands = Vec::new();
    for entry in read {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if [".sql", ".yaml", ".yml"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            names.push(name);
        } else if name.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(entry.path())
                .map_err(io(&entry.path()))?
                .permissions()
                .mode();
            match mode & 0o111 {
                0 => warn!(
                    "{prefix}{name}: not executable, so not run as a command seed (chmod +x it)"
                ),
                _ => commands.push(name),
            }
        }
    }
    names.sort();
    commands.sort();
    // The commands of a folder run after its SQL and YAML seeds.
    names
        .into_iter()
        .chain(commands)
        .map(|file| {
            let path = dir.join(&file);
            let name = format!("{prefix}{file}");
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let (text, invalid_at) = text::decode(&bytes);
            if let Some(at) = invalid_at {
                // The bytes before `at` are valid, so the offset is the same in `text`.
                let (line, column) = text::line_col(&text, at);
                warn!(
                    "{name}:{line}:{column}: not valid UTF-8; such bytes reach the server as U+FFFD \
                     (the checksum is of the text as read)"
                );
            }
            SeedFile::read(name, &path, text)
        })
        .collect()
}
