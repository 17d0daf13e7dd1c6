//! What one statement does to the tables, read from PostgreSQL's own parse tree (pg_query):
//! the table lock it takes (strictest subcommand wins, as the server decides it), what it
//! creates and the enum labels it adds, and the candidate findings that the lock analysis
//! (`lint`) then confirms or silences against the live catalog. Pure: it knows no folder and no
//! database, so both the migrator and the lint read statements through it.

use pg_query::protobuf::a_const::Val;
use pg_query::protobuf::{ObjectType, ReindexObjectType};
use pg_query::NodeEnum;

mod alter;

use alter::alter_cmd;

/// PostgreSQL's table lock modes, weakest first (docs, "Explicit Locking").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lock {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl std::fmt::Display for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lock::AccessShare => "ACCESS SHARE",
            Lock::RowShare => "ROW SHARE",
            Lock::RowExclusive => "ROW EXCLUSIVE",
            Lock::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Lock::Share => "SHARE",
            Lock::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Lock::Exclusive => "EXCLUSIVE",
            Lock::AccessExclusive => "ACCESS EXCLUSIVE",
        })
    }
}

impl Lock {
    /// The mode as `pg_locks.mode` spells it (`AccessShareLock`).
    pub fn from_pg(mode: &str) -> Option<Lock> {
        Some(match mode {
            "AccessShareLock" => Lock::AccessShare,
            "RowShareLock" => Lock::RowShare,
            "RowExclusiveLock" => Lock::RowExclusive,
            "ShareUpdateExclusiveLock" => Lock::ShareUpdateExclusive,
            "ShareLock" => Lock::Share,
            "ShareRowExclusiveLock" => Lock::ShareRowExclusive,
            "ExclusiveLock" => Lock::Exclusive,
            "AccessExclusiveLock" => Lock::AccessExclusive,
            _ => return None,
        })
    }

    /// The conflict table of the docs ("Explicit Locking", Table 13.2).
    pub fn conflicts(self, held: Lock) -> bool {
        use Lock::*;
        let (a, b) = (self.min(held), self.max(held));
        match a {
            AccessShare => b == AccessExclusive,
            RowShare => b >= Exclusive,
            RowExclusive => b >= Share,
            ShareUpdateExclusive => b >= ShareUpdateExclusive,
            Share => b == RowExclusive || b == ShareUpdateExclusive || b >= ShareRowExclusive,
            ShareRowExclusive | Exclusive | AccessExclusive => true,
        }
    }
}

/// A table as the statement names it (the parser has already folded unquoted names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.schema.is_empty() {
            true => f.write_str(&self.name),
            false => write!(f, "{}.{}", self.schema, self.name),
        }
    }
}

/// What the catalog must say for a candidate to become a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// The table exists and has rows (a new or empty table makes it harmless).
    Rows,
    /// As `Rows`, and one of these functions in the column default is volatile.
    VolatileDefault(Vec<String>),
    /// As `Rows`, and no valid CHECK constraint proves the column NOT NULL.
    NoNotNullCheck(String),
    /// As `Rows`, and the column's type change is not binary-coercible (`to`: the new type and
    /// its modifier, `None` when a USING clause or an unread modifier means a rewrite anyway).
    Rewrite {
        column: String,
        to: Option<(String, i32)>,
    },
    /// As `Rows`, on a server before PostgreSQL 11, which fills any default by rewriting the
    /// table (11 stores a non-volatile default in the catalog instead); these functions are the
    /// default's, whose volatile ones the volatile rule already reports.
    OldServerDefault(Vec<String>),
    /// The table has rows: the statement would fail (a migration that cannot succeed).
    FailsWithRows,
    /// Nothing: the statement itself is the finding (a rename, a drop, a timeout switched off).
    Nothing,
    /// Nothing either, and the statement fails as written wherever it runs.
    Fails,
}

/// A finding before the catalog has its say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub rule: &'static str,
    pub lock: Lock,
    pub table: Table,
    pub needs: Needs,
    pub why: &'static str,
    pub fix: &'static str,
}

/// One statement, classified.
#[derive(Debug, Default)]
pub struct Statement {
    /// The strictest table lock and the table it is taken on.
    pub lock: Option<(Lock, Table)>,
    /// Tables this statement creates (later statements on them touch a new table).
    pub creates: Vec<Table>,
    pub candidates: Vec<Candidate>,
    /// Enum labels this statement adds (`ALTER TYPE ... ADD VALUE`).
    pub adds_labels: Vec<String>,
    /// Every string constant in the statement (a later use of an added label).
    pub strings: Vec<String>,
    /// What it creates without `IF NOT EXISTS` (`table`, `type`, `schema`): it fails where
    /// that already exists (a database built by `drizzle-kit push`).
    pub must_be_new: Vec<(&'static str, Table)>,
}

/// Past this size a statement is data (a bulk INSERT, a large literal), not DDL to judge, and
/// its parse tree would cost several times its size in memory: it is "lock unknown".
pub const MAX_BYTES: usize = 1 << 20;

/// Classifies one statement; `None` when the grammar cannot read it or it is over
/// [`MAX_BYTES`] ("lock unknown").
pub fn classify(sql: &str) -> Option<Statement> {
    if sql.len() > MAX_BYTES {
        return None;
    }
    let parsed = pg_query::parse(sql).ok()?;
    let mut out = Statement::default();
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        statement(node, &mut out);
    }
    out.strings = string_constants(sql);
    Some(out)
}

pub(crate) fn name(rv: Option<&pg_query::protobuf::RangeVar>) -> Table {
    rv.map(|r| Table {
        schema: r.schemaname.clone(),
        name: r.relname.clone(),
    })
    .unwrap_or_default()
}

pub(crate) fn take(out: &mut Statement, lock: Lock, table: &Table) {
    if out.lock.as_ref().is_none_or(|(l, _)| lock > *l) {
        out.lock = Some((lock, table.clone()));
    }
}

fn statement(node: &NodeEnum, out: &mut Statement) {
    match node {
        NodeEnum::CreateStmt(c) => {
            let table = name(c.relation.as_ref());
            if !c.if_not_exists {
                out.must_be_new.push(("table", table.clone()));
            }
            out.creates.push(table);
        }
        NodeEnum::CreateEnumStmt(e) => {
            let parts = strings(&e.type_name);
            if let [.., name] = parts.as_slice() {
                let schema = parts.len().checked_sub(2).and_then(|i| parts.get(i));
                let ty = Table {
                    schema: schema.map(|s| s.to_string()).unwrap_or_default(),
                    name: name.to_string(),
                };
                out.must_be_new.push(("type", ty));
            }
        }
        NodeEnum::CreateSchemaStmt(c) if !c.if_not_exists && !c.schemaname.is_empty() => {
            let schema = Table {
                schema: String::new(),
                name: c.schemaname.clone(),
            };
            out.must_be_new.push(("schema", schema));
        }
        NodeEnum::IndexStmt(i) => {
            let table = name(i.relation.as_ref());
            if i.concurrent {
                take(out, Lock::ShareUpdateExclusive, &table);
            } else {
                take(out, Lock::Share, &table);
                out.candidates.push(Candidate {
                    rule: "index-not-concurrent",
                    lock: Lock::Share,
                    table,
                    needs: Needs::Rows,
                    why: "builds the index under a SHARE lock: every write to the table waits for the whole build",
                    fix: "CREATE INDEX CONCURRENTLY, alone in its migration (db-init runs it outside a transaction)",
                });
            }
        }
        NodeEnum::AlterTableStmt(a) => {
            let table = name(a.relation.as_ref());
            for cmd in &a.cmds {
                if let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() {
                    alter_cmd(c, &table, out);
                }
            }
        }
        NodeEnum::RenameStmt(r) => {
            let table = name(r.relation.as_ref());
            take(out, Lock::AccessExclusive, &table);
            let column = r.rename_type == ObjectType::ObjectColumn as i32;
            let relation = r.rename_type == ObjectType::ObjectTable as i32;
            if column || relation {
                out.candidates.push(Candidate {
                    rule: if column { "rename-column" } else { "rename-table" },
                    lock: Lock::AccessExclusive,
                    table,
                    needs: Needs::Nothing,
                    why: "the pods still running the previous release query the old name and fail until they are replaced",
                    fix: "add the new name, write both, move the readers, drop the old one in a later release",
                });
            }
        }
        NodeEnum::DropStmt(d)
            if d.remove_type == ObjectType::ObjectIndex as i32 && !d.concurrent =>
        {
            out.candidates.push(Candidate {
                rule: "drop-index-not-concurrent",
                lock: Lock::AccessExclusive,
                table: Table::default(),
                needs: Needs::Nothing,
                why: "takes an ACCESS EXCLUSIVE lock on the index's table: reads and writes wait",
                fix: "DROP INDEX CONCURRENTLY, alone in its migration",
            });
        }
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
            for table in d.objects.iter().filter_map(qualified) {
                take(out, Lock::AccessExclusive, &table);
                out.candidates.push(Candidate {
                    rule: "drop-table",
                    lock: Lock::AccessExclusive,
                    table,
                    needs: Needs::Nothing,
                    why: "the pods still running the previous release query the table and fail until they are replaced; its rows are gone",
                    fix: "stop using the table in a release first, then drop it in the next",
                });
            }
        }
        NodeEnum::AlterEnumStmt(e) if !e.new_val.is_empty() => {
            out.adds_labels.push(e.new_val.clone());
        }
        NodeEnum::ReindexStmt(r) => {
            let concurrent = r.params.iter().any(|p| {
                matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "concurrently")
            });
            let kind = ReindexObjectType::try_from(r.kind).unwrap_or(ReindexObjectType::Undefined);
            let on_one = matches!(
                kind,
                ReindexObjectType::ReindexObjectIndex | ReindexObjectType::ReindexObjectTable
            );
            if !concurrent && on_one {
                let table = name(r.relation.as_ref());
                take(out, Lock::Share, &table);
                out.candidates.push(Candidate {
                    rule: "reindex-not-concurrent",
                    lock: Lock::AccessExclusive,
                    table,
                    needs: Needs::Rows,
                    why: "rebuilds under a SHARE lock on the table (ACCESS EXCLUSIVE on the index): writes wait, and reads that use the index",
                    fix: "REINDEX ... CONCURRENTLY (PostgreSQL 12+), alone in its migration",
                });
            }
        }
        NodeEnum::ClusterStmt(c) if c.relation.is_some() => {
            rewrite(out, name(c.relation.as_ref()), "cluster");
        }
        NodeEnum::VacuumStmt(v)
            if v.is_vacuumcmd
                && v.options.iter().any(|o| {
                    matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "full")
                }) =>
        {
            for r in &v.rels {
                if let Some(NodeEnum::VacuumRelation(vr)) = r.node.as_ref() {
                    rewrite(out, name(vr.relation.as_ref()), "vacuum-full");
                }
            }
        }
        NodeEnum::RefreshMatViewStmt(r) => {
            let table = name(r.relation.as_ref());
            if r.concurrent {
                take(out, Lock::Exclusive, &table);
            } else {
                take(out, Lock::AccessExclusive, &table);
                out.candidates.push(Candidate {
                    rule: "refresh-not-concurrent",
                    lock: Lock::AccessExclusive,
                    table,
                    needs: Needs::Rows,
                    why: "recomputes the view under an ACCESS EXCLUSIVE lock: every read of it waits",
                    fix: "REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view)",
                });
            }
        }
        NodeEnum::VariableSetStmt(v)
            if matches!(v.name.as_str(), "lock_timeout" | "statement_timeout") =>
        {
            let off = v.args.iter().any(|a| match a.node.as_ref() {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(Val::Ival(i)) => i.ival == 0,
                    Some(Val::Sval(t)) => t.sval.trim() == "0",
                    _ => false,
                },
                _ => false,
            });
            if off {
                out.candidates.push(Candidate {
                    rule: "timeout-off",
                    lock: Lock::AccessShare,
                    table: Table::default(),
                    needs: Needs::Nothing,
                    why: "switches off the guard that keeps a migration from queueing the app's queries behind it",
                    fix: "leave ddl_lock_timeout / statement_timeout to db-init's settings",
                });
            }
        }
        _ => {}
    }
}

/// The String nodes of a name list (`schema.name`, a function's qualified name).
pub(crate) fn strings(nodes: &[pg_query::protobuf::Node]) -> Vec<&str> {
    nodes
        .iter()
        .filter_map(|p| match p.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect()
}

/// The statement's '...' string constants, from the server's own lexer (`E'...'` and
/// dollar quotes are left out: an enum label is written as a plain literal).
fn string_constants(sql: &str) -> Vec<String> {
    let Ok(scan) = pg_query::scan(sql) else {
        return Vec::new();
    };
    scan.tokens
        .iter()
        .filter(|t| t.token == pg_query::protobuf::Token::Sconst as i32)
        .filter_map(|t| sql.get(usize::try_from(t.start).ok()?..usize::try_from(t.end).ok()?))
        .filter_map(|lit| lit.strip_prefix('\'')?.strip_suffix('\''))
        .map(|inner| inner.replace("''", "'"))
        .collect()
}

/// `a.b` from a DROP's object list.
fn qualified(n: &pg_query::protobuf::Node) -> Option<Table> {
    let Some(NodeEnum::List(l)) = n.node.as_ref() else {
        return None;
    };
    match strings(&l.items).as_slice() {
        [name] => Some(Table {
            schema: String::new(),
            name: name.to_string(),
        }),
        [.., schema, name] => Some(Table {
            schema: schema.to_string(),
            name: name.to_string(),
        }),
        [] => None,
    }
}

/// A command that rewrites the whole table under ACCESS EXCLUSIVE (CLUSTER, VACUUM FULL).
fn rewrite(out: &mut Statement, table: Table, rule: &'static str) {
    take(out, Lock::AccessExclusive, &table);
    out.candidates.push(Candidate {
        rule,
        lock: Lock::AccessExclusive,
        table,
        needs: Needs::Rows,
        why: "rewrites the whole table under an ACCESS EXCLUSIVE lock: every query on it waits",
        fix: "pg_repack or pg_squeeze, outside the migration; or a new table filled in batches",
    });
}

#[cfg(test)]
mod tests;
