//! The one JSON design of `status`, `validate`, `plan` and `run --report`, on one database and
//! on many: the same top-level fields (the command, its overall state and exit code, a summary,
//! counts by state) around one entry per database, so a pipeline written against one database
//! reads a fleet unchanged. README "JSON documents" lists every field and state.

use serde::Serialize;
use serde_json::{Map, Value};

/// Bumped only when a field changes meaning or goes away; new fields do not bump it.
pub const SCHEMA: u32 = 1;

/// Every state an entry (and the document as a whole) can be in, spelled the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    // Ordered from the best to the worst: a document's state is its worst entry's.
    UpToDate,
    Valid,
    Done,
    Pending,
    NotStarted,
    Running,
    Skipped,
    Interrupted,
    Invalid,
    Failed,
    /// Not checked: the connection or the history read failed.
    Error,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::UpToDate => "up_to_date",
            State::Valid => "valid",
            State::Done => "done",
            State::Pending => "pending",
            State::NotStarted => "not_started",
            State::Running => "running",
            State::Skipped => "skipped",
            State::Interrupted => "interrupted",
            State::Invalid => "invalid",
            State::Failed => "failed",
            State::Error => "error",
        }
    }
}

/// The document: `states` are the ones this command's entries can take (each is counted,
/// zeros included, so a pipeline never meets a missing key); `extra` holds the command's own
/// top-level fields; `entries` are in the order of the set.
pub struct Document<'a> {
    pub command: &'a str,
    pub states: &'a [State],
    /// The state of an empty set.
    pub empty: State,
    pub exit_code: Option<u8>,
    pub summary: String,
    pub extra: Map<String, Value>,
    pub entries: Vec<(State, Value)>,
}

impl Document<'_> {
    pub fn to_value(&self) -> Value {
        let state = self
            .entries
            .iter()
            .map(|(s, _)| *s)
            .max()
            .unwrap_or(self.empty);
        let mut counts = Map::new();
        for s in self.states {
            let n = self.entries.iter().filter(|(e, _)| e == s).count();
            counts.insert(s.name().into(), n.into());
        }
        let mut doc = Map::new();
        doc.insert("schema".into(), SCHEMA.into());
        doc.insert("command".into(), self.command.into());
        doc.insert("state".into(), state.name().into());
        doc.insert("exit_code".into(), self.exit_code.into());
        doc.insert("summary".into(), self.summary.clone().into());
        doc.insert("total".into(), self.entries.len().into());
        doc.insert("counts".into(), Value::Object(counts));
        for (k, v) in &self.extra {
            doc.insert(k.clone(), v.clone());
        }
        let entries = self.entries.iter().map(|(_, v)| v.clone()).collect();
        doc.insert("databases".into(), Value::Array(entries));
        Value::Object(doc)
    }

    /// Pretty-printed, with the final newline.
    pub fn text(&self) -> String {
        format!("{:#}\n", self.to_value())
    }
}

/// An entry's first fields, in the order every command writes them.
pub fn entry(
    database: Option<&str>,
    target: Option<&str>,
    state: State,
    exit_code: Option<u8>,
    error: Option<String>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("database".into(), database.into());
    m.insert("target".into(), target.into());
    m.insert("state".into(), state.name().into());
    m.insert("exit_code".into(), exit_code.into());
    m.insert("error".into(), error.into());
    m
}

/// A problem or warning as JSON: its fields (with `kind`) and the message the log shows.
pub fn with_message<T: Serialize + std::fmt::Display>(item: &T) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    match v.as_object_mut() {
        Some(map) => {
            map.insert("message".into(), item.to_string().into());
        }
        None => {
            let mut map = Map::new();
            map.insert("kind".into(), v);
            map.insert("message".into(), item.to_string().into());
            v = Value::Object(map);
        }
    }
    v
}

/// The database name of a URL (what names it in a fleet's entries too).
pub fn database_name(db: &crate::config::Database) -> String {
    db.pg.get_dbname().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(entries: Vec<State>) -> Value {
        Document {
            command: "status",
            states: &[
                State::UpToDate,
                State::Pending,
                State::Invalid,
                State::Error,
            ],
            empty: State::UpToDate,
            exit_code: Some(0),
            summary: String::new(),
            extra: Map::new(),
            entries: entries
                .into_iter()
                .map(|s| (s, Value::Object(entry(None, None, s, None, None))))
                .collect(),
        }
        .to_value()
    }

    #[test]
    fn the_document_takes_its_worst_entry_state_and_counts_every_state() {
        let d = doc(vec![State::UpToDate, State::Invalid, State::Pending]);
        assert_eq!(d["state"], "invalid");
        assert_eq!(d["counts"]["pending"], 1);
        assert_eq!(d["counts"]["error"], 0);
        assert_eq!(d["total"], 3);
        assert_eq!(doc(vec![])["state"], "up_to_date");
    }

    #[test]
    fn state_names_match_their_serialisation() {
        for s in [
            State::UpToDate,
            State::Valid,
            State::Done,
            State::Pending,
            State::NotStarted,
            State::Running,
            State::Skipped,
            State::Interrupted,
            State::Invalid,
            State::Failed,
            State::Error,
        ] {
            assert_eq!(serde_json::to_value(s).ok(), Some(Value::from(s.name())));
        }
    }
}
