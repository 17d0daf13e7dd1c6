//! Reading the seeds folder: which files are seeds, in which order, and their checksums; the
//! shape of every YAML seed is checked here, before anything connects.

use std::path::Path;

use tracing::warn;

use super::{yaml, SeedError};
use crate::text;

#[derive(Debug, Clone)]
pub struct SeedFile {
    pub name: String,
    pub text: String,
    pub checksum: String,
}

impl SeedFile {
    pub fn is_sql(&self) -> bool {
        self.name.ends_with(".sql")
    }
}

/// The seed files, in lexical order; an absent folder means no seeds.
pub fn load(dir: &Path) -> Result<Vec<SeedFile>, SeedError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeedError::Io { path, source }
    };
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut names = Vec::new();
    for entry in read {
        let name = entry
            .map_err(io(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let is_seed = [".sql", ".yaml", ".yml"]
            .iter()
            .any(|ext| name.ends_with(ext));
        if is_seed && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
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
            let seed = SeedFile {
                checksum: text::sha256_hex(&text),
                name,
                text,
            };
            if !seed.is_sql() {
                yaml::check(&seed)?;
            }
            Ok(seed)
        })
        .collect()
}
