//! What `plan` prints for the seeds: the exact SQL each one sends, YAML upserts with their
//! parameters, or why it is skipped. Reads the catalog; writes nothing.

use super::{done_by, runs, skip_reason, yaml, SeedFile};
use crate::config::SeedSettings;
use crate::migrate::sql as lex;
use crate::pg::{work_settings_sql, Session};

pub async fn text(
    session: &Session,
    settings: &SeedSettings,
    seeds: &[SeedFile],
    wave: &str,
) -> String {
    if seeds.is_empty() {
        return String::new();
    }
    let mut out = format!("{}\n", work_settings_sql(None, settings.statement_timeout));
    let previous = match runs::read(session, wave).await {
        Ok(Some(previous)) => previous,
        Ok(None) => {
            out.push_str(
                "-- db_init.seed_runs does not exist yet: created before the first seed\n",
            );
            Vec::new()
        }
        Err(e) => {
            out.push_str(&format!("-- db_init.seed_runs could not be read: {e}\n"));
            Vec::new()
        }
    };
    for seed in seeds {
        if let Some(run) = done_by(seed, settings.mode, &previous) {
            let why = skip_reason(settings.mode, run);
            out.push_str(&format!("-- seed {}: skipped, {why}\n", seed.name));
            continue;
        }
        out.push_str(&format!("-- seed {}\n", seed.name));
        if seed.is_command() {
            out.push_str(&format!(
                "-- runs the command {} with DATABASE_URL and PG* of this connection, then:\n{};\n",
                seed.path.display(),
                runs::record_sql(seed, Some(0))
            ));
        } else if seed.is_sql() {
            out.push_str(&sql_text(seed));
        } else {
            // Values as their `${...}` tokens: plan never prints a value (a secret's).
            out.push_str(&yaml_text(session, &seed.shown()).await);
        }
    }
    out
}

fn sql_text(seed: &SeedFile) -> String {
    let body = seed.text.strip_prefix('\u{feff}').unwrap_or(&seed.text);
    let statements = lex::statements(body);
    let own = statements
        .iter()
        .any(|s| lex::transaction_control(&s.words).is_some());
    if !own {
        return format!(
            "BEGIN;\n{body}\n;\n{};\nCOMMIT;\n",
            runs::record_sql(seed, None)
        );
    }
    let mut out = String::from("-- (its own transaction control: one query per statement)\n");
    for s in &statements {
        out.push_str(body.get(s.range.clone()).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("{};\n", runs::record_sql(seed, Some(0))));
    out
}

async fn yaml_text(session: &Session, seed: &SeedFile) -> String {
    let prepared = match yaml::prepare(session, seed).await {
        Ok(p) => p,
        Err(e) => {
            return format!("-- its statements depend on the catalog after the migrations: {e}\n")
        }
    };
    let mut out = String::from("BEGIN;\n");
    for st in &prepared.statements {
        out.push_str(&format!("{};\n", st.sql));
        let params: Vec<String> = st
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Some(v) => format!("${} = {v:?}", i + 1),
                None => format!("${} = NULL", i + 1),
            })
            .collect();
        if !params.is_empty() {
            out.push_str(&format!("-- parameters: {}\n", params.join(", ")));
        }
    }
    for sql in &prepared.sequences {
        out.push_str(&format!("{sql};\n"));
    }
    out.push_str(&format!("{};\nCOMMIT;\n", runs::record_sql(seed, None)));
    out
}
