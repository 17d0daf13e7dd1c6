//! Reading a folder's migration files: on a folder of thousands the opens and reads are most of
//! a start, so a big folder is read by a few threads at once, each taking a contiguous share.

use std::path::{Path, PathBuf};

use super::migration::{Migration, Split};

/// A file to read, and what it becomes.
pub struct Wanted {
    pub version: i64,
    pub name: String,
    /// The path inside the folder, as reports name it.
    pub file: String,
    pub split: Split,
}

/// A file that could not be read, and where.
pub struct Unread {
    pub wanted: Wanted,
    pub path: PathBuf,
    pub error: std::io::Error,
}

/// Below this many files one thread is quicker than starting others.
const PARALLEL_FROM: usize = 256;
const MAX_THREADS: usize = 4;

/// Reads and decodes every wanted file of `dir`, in the order given.
pub fn read_all(dir: &Path, wanted: Vec<Wanted>) -> Vec<Result<Migration, Unread>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_THREADS);
    if wanted.len() < PARALLEL_FROM || threads < 2 {
        return wanted.into_iter().map(|w| read_one(dir, w)).collect();
    }
    let share = wanted.len().div_ceil(threads);
    let mut shares = Vec::new();
    let mut rest = wanted;
    while rest.len() > share {
        let tail = rest.split_off(share);
        shares.push(rest);
        rest = tail;
    }
    shares.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    share
                        .into_iter()
                        .map(|w| read_one(dir, w))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A reader thread only ends early by panicking; the panic is passed on as it was.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn read_one(dir: &Path, wanted: Wanted) -> Result<Migration, Unread> {
    let path = dir.join(&wanted.file);
    match crate::text::read_file(&path) {
        Ok(bytes) => Ok(Migration::new(
            wanted.version,
            wanted.name,
            wanted.file,
            bytes,
            wanted.split,
        )),
        Err(error) => Err(Unread {
            wanted,
            path,
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many threads or one, the migrations come back in the order asked, each with its text.
    #[test]
    fn a_big_folder_comes_back_in_order() {
        let dir = std::env::temp_dir().join(format!("db-init-read-all-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let wanted = |n: usize| {
            (0..n)
                .map(|i| Wanted {
                    version: i as i64,
                    name: format!("m{i}"),
                    file: format!("{i:04}.sql"),
                    split: Split::Breakpoints,
                })
                .collect::<Vec<_>>()
        };
        for i in 0..1000 {
            let _ = std::fs::write(dir.join(format!("{i:04}.sql")), format!("SELECT {i};"));
        }
        let _ = std::fs::remove_file(dir.join("0500.sql"));
        for n in [10, 1000] {
            let read = read_all(&dir, wanted(n));
            assert_eq!(read.len(), n);
            for (i, r) in read.iter().enumerate() {
                match r {
                    Ok(m) => assert_eq!(
                        (m.version, m.text.as_str()),
                        (i as i64, &*format!("SELECT {i};"))
                    ),
                    Err(u) => assert_eq!((i, u.error.kind()), (500, std::io::ErrorKind::NotFound)),
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
