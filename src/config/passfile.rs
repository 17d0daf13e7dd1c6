//! The password file as libpq reads it (`PGPASSFILE`, else `~/.pgpass`): lines
//! `hostname:port:database:username:password`, `*` wildcards, `\:` and `\\` escapes, `#`
//! comments, the first matching line wins, and a file that group or others may read is ignored
//! with a warning. Its `Debug` never shows a line: every line holds a password.

use std::fmt;
use std::path::{Path, PathBuf};

use tokio_postgres::config::Host;

/// The lines of a password file that passed libpq's checks.
pub struct PassFile {
    path: PathBuf,
    lines: Vec<String>,
}

impl fmt::Debug for PassFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PassFile({}, {} lines)",
            self.path.display(),
            self.lines.len()
        )
    }
}

/// Directories libpq treats as its default socket directory (upstream `/tmp`, Debian's
/// `/var/run/postgresql`): a socket there matches the host `localhost`, as in libpq.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/tmp", "/var/run/postgresql", "/run/postgresql"];

impl PassFile {
    /// `PGPASSFILE`, else `.pgpass` in the home directory; `None` when there is no such file
    /// or libpq would ignore it (then with its warning on stderr).
    pub fn locate(env: &dyn Fn(&str) -> Option<String>) -> Option<PassFile> {
        let path = match env("PGPASSFILE") {
            Some(p) => PathBuf::from(p),
            None => home(env)?.join(".pgpass"),
        };
        PassFile::read(&path)
    }

    fn read(path: &Path) -> Option<PassFile> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            warn_once(path, "is not a plain file");
            return None;
        }
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
            warn_once(
                path,
                "has group or world access; permissions should be u=rw (0600) or less",
            );
            return None;
        }
        // Not UTF-8, or unreadable: libpq would read bytes; a password here must be text to
        // reach tokio-postgres as one, so such lines are simply never matched.
        let bytes = std::fs::read(path).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let lines = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        Some(PassFile {
            path: path.to_path_buf(),
            lines,
        })
    }

    /// The password of the first line matching the first host of `pg` (libpq's rules for
    /// the host, port, database and user it would connect with).
    pub fn lookup(&self, pg: &tokio_postgres::Config) -> Option<String> {
        let user = pg.get_user()?;
        let host = match pg.get_hosts().first() {
            None => "localhost".to_string(),
            Some(Host::Tcp(h)) if h.is_empty() => "localhost".to_string(),
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(dir)) => match dir.to_str() {
                Some(d) if DEFAULT_SOCKET_DIRS.contains(&d.trim_end_matches('/')) => {
                    "localhost".to_string()
                }
                Some(d) => d.to_string(),
                None => return None,
            },
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432).to_string();
        let dbname = pg.get_dbname().unwrap_or(user);
        self.lines
            .iter()
            .find_map(|line| matching(line, [&host, &port, dbname, user]))
    }
}

/// The password of `line` when its four fields match `wanted`.
fn matching(line: &str, wanted: [&str; 4]) -> Option<String> {
    let mut rest = line;
    for want in wanted {
        rest = field_matches(rest, want)?;
    }
    // The password runs to the first unescaped `:` or the end; escapes are undone.
    let mut password = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(next) => password.push(next),
                None => password.push('\\'),
            },
            c => password.push(c),
        }
    }
    Some(password)
}

/// libpq's `pwdfMatchesString`: a field of `*` matches anything; otherwise the field, with
/// `\` escaping the next character, must equal `want`. Returns the text after the field's `:`.
fn field_matches<'a>(line: &'a str, want: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut want = want.chars();
    let mut iter = line.char_indices();
    while let Some((i, c)) = iter.next() {
        let (c, escaped) = match c {
            '\\' => match iter.next() {
                Some((_, next)) => (next, true),
                None => return None,
            },
            c => (c, false),
        };
        if c == ':' && !escaped {
            // The field ended: it matches only when all of `want` was consumed.
            return match want.next() {
                None => line.get(i + 1..),
                Some(_) => None,
            };
        }
        if want.next() != Some(c) {
            return None;
        }
    }
    None
}

/// `HOME`, else the home directory of the user the process runs as (libpq's fallback).
fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(h) = env("HOME") {
        return Some(PathBuf::from(h));
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; the directory is copied
    // out at once, and this runs once, while the settings are loaded on one thread.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
        dir.to_str().ok().map(PathBuf::from)
    }
}

/// libpq's warning, printed as libpq prints it (the settings are read before logging starts),
/// once per file: a run over many databases consults the file for each of them.
fn warn_once(path: &Path, what: &str) {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let first = match WARNED.lock() {
        Ok(mut seen) if !seen.iter().any(|p| p == path) => {
            seen.push(path.to_path_buf());
            true
        }
        Ok(_) => false,
        Err(_) => true,
    };
    if first {
        eprintln!(
            "WARNING: password file \"{}\" {what}; it is ignored",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PassFile {
        PassFile {
            path: PathBuf::from("test"),
            lines: text
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        }
    }

    fn pg(url: &str) -> tokio_postgres::Config {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let f = file(
            "# comment\nh:5432:app:u:App-pw\nh:*:*:u:Any-db-pw\n*:*:*:*:Last-pw\nh:5432:other:u:Never\n",
        );
        assert_eq!(
            f.lookup(&pg("postgres://u@h/app")).as_deref(),
            Some("App-pw")
        );
        assert_eq!(
            f.lookup(&pg("postgres://u@h:6000/other")).as_deref(),
            Some("Any-db-pw")
        );
        assert_eq!(
            f.lookup(&pg("postgres://u@h/other")).as_deref(),
            Some("Any-db-pw")
        );
        assert_eq!(
            f.lookup(&pg("postgres://v@elsewhere/x")).as_deref(),
            Some("Last-pw")
        );
        // No database in the URL: the user name is the database, as in libpq.
        let g = file("h:5432:u:u:Same-name-pw\n");
        assert_eq!(
            g.lookup(&pg("postgres://u@h")).as_deref(),
            Some("Same-name-pw")
        );
        assert_eq!(g.lookup(&pg("postgres://u@h/x")), None);
    }

    #[test]
    fn escapes_are_read_in_fields_and_in_the_password() {
        let f = file("h:5432:db\\:1:u\\\\x:P\\:w\\\\d:trailing\n");
        assert_eq!(
            f.lookup(&pg("host=h dbname='db:1' user='u\\\\x'"))
                .as_deref(),
            Some("P:w\\d")
        );
        assert_eq!(f.lookup(&pg("host=h dbname=db user='u\\\\x'")), None);
        // A field that is a prefix of the wanted value does not match, nor the reverse.
        let g = file("h:5432:ap:u:x\nh:5432:apps:u:y\n");
        assert_eq!(g.lookup(&pg("postgres://u@h/app")), None);
    }

    #[test]
    fn localhost_matches_the_default_socket_directory_only() {
        let f = file("localhost:5432:*:u:Local-pw\n/srv/sock:5432:*:u:Srv-pw\n");
        for dir in ["/var/run/postgresql", "/tmp", "/run/postgresql/"] {
            let c = pg(&format!("host={dir} user=u dbname=d"));
            assert_eq!(f.lookup(&c).as_deref(), Some("Local-pw"), "{dir}");
        }
        assert_eq!(
            f.lookup(&pg("host=/srv/sock user=u dbname=d")).as_deref(),
            Some("Srv-pw")
        );
        assert_eq!(f.lookup(&pg("host=/elsewhere user=u dbname=d")), None);
        assert_eq!(
            f.lookup(&pg("postgres://u@localhost/d")).as_deref(),
            Some("Local-pw")
        );
    }

    #[test]
    fn a_file_others_may_read_is_ignored_and_its_lines_never_shown() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("db-init-passfile-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("pgpass");
        let _ = std::fs::write(&path, "*:*:*:*:File-pw\n");
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        let read = PassFile::read(&path).unwrap_or_else(|| panic!("0600 file ignored"));
        assert_eq!(
            read.lookup(&pg("postgres://u@h/d")).as_deref(),
            Some("File-pw")
        );
        assert!(!format!("{read:?}").contains("File-pw"));
        for mode in [0o640, 0o604, 0o660] {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
            assert!(PassFile::read(&path).is_none(), "mode {mode:o} accepted");
        }
        assert!(PassFile::read(&dir).is_none(), "a directory accepted");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
