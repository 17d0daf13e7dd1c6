//! What one statement does to the tables, read from PostgreSQL's own parse tree (pg_query):
//! the table lock it takes (strictest subcommand wins, as the server decides it), and the
//! candidate findings that the live catalog then confirms or silences (see `catalog.rs`).

use pg_query::protobuf::a_const::Val;
use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::{NodeEnum, NodeRef};

/// PostgreSQL's table lock modes, weakest first (docs, "Explicit Locking").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lock {
    AccessShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    AccessExclusive,
}

impl std::fmt::Display for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lock::AccessShare => "ACCESS SHARE",
            Lock::RowExclusive => "ROW EXCLUSIVE",
            Lock::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Lock::Share => "SHARE",
            Lock::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Lock::AccessExclusive => "ACCESS EXCLUSIVE",
        })
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
    /// The table has rows: the statement would fail (a migration that cannot succeed).
    FailsWithRows,
    /// Nothing: the statement itself is the finding (a rename, a drop, a timeout switched off).
    Nothing,
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
    Some(out)
}

fn name(rv: Option<&pg_query::protobuf::RangeVar>) -> Table {
    rv.map(|r| Table {
        schema: r.schemaname.clone(),
        name: r.relname.clone(),
    })
    .unwrap_or_default()
}

fn take(out: &mut Statement, lock: Lock, table: &Table) {
    if out.lock.as_ref().is_none_or(|(l, _)| lock > *l) {
        out.lock = Some((lock, table.clone()));
    }
}

fn statement(node: &NodeEnum, out: &mut Statement) {
    match node {
        NodeEnum::CreateStmt(c) => out.creates.push(name(c.relation.as_ref())),
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

fn alter_cmd(c: &pg_query::protobuf::AlterTableCmd, table: &Table, out: &mut Statement) {
    let kind = AlterTableType::try_from(c.subtype).unwrap_or(AlterTableType::Undefined);
    let def = c.def.as_ref().and_then(|d| d.node.as_ref());
    let mut push = |rule, lock, needs, why, fix| {
        out.candidates.push(Candidate {
            rule,
            lock,
            table: table.clone(),
            needs,
            why,
            fix,
        })
    };
    let lock = match kind {
        AlterTableType::AtAddColumn => {
            if let Some(NodeEnum::ColumnDef(col)) = def {
                let has_default = col.raw_default.is_some()
                    || col.constraints.iter().any(|n| {
                        matches!(n.node.as_ref(), Some(NodeEnum::Constraint(k)) if k.contype == ConstrType::ConstrDefault as i32)
                    });
                let not_null = col.is_not_null
                    || col.constraints.iter().any(|n| {
                        matches!(n.node.as_ref(), Some(NodeEnum::Constraint(k)) if k.contype == ConstrType::ConstrNotnull as i32)
                    });
                let functions = default_functions(col);
                if not_null && !has_default {
                    push("add-column-not-null-without-default", Lock::AccessExclusive, Needs::FailsWithRows,
                        "a NOT NULL column without a default cannot be added to a table that has rows (23502): the migration fails",
                        "add it with a DEFAULT, or nullable, backfill, then SET NOT NULL");
                } else if !functions.is_empty() {
                    push("add-column-volatile-default", Lock::AccessExclusive, Needs::VolatileDefault(functions),
                        "a volatile default rewrites the whole table under an ACCESS EXCLUSIVE lock",
                        "add the column without the default (or with a constant one), backfill in batches, then SET DEFAULT");
                }
            }
            Lock::AccessExclusive
        }
        AlterTableType::AtSetNotNull => {
            push("set-not-null", Lock::AccessExclusive, Needs::NoNotNullCheck(c.name.clone()),
                "scans the whole table under an ACCESS EXCLUSIVE lock to check for NULLs",
                "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in a later migration, then SET NOT NULL (no scan)");
            Lock::AccessExclusive
        }
        AlterTableType::AtAlterColumnType => {
            push("alter-column-type", Lock::AccessExclusive, Needs::Rows,
                "changing a column's type rewrites the table and its indexes under an ACCESS EXCLUSIVE lock (unless the cast is binary-coercible, such as varchar(n) to text)",
                "add a new column, backfill in batches, switch the app, drop the old one");
            Lock::AccessExclusive
        }
        AlterTableType::AtAddConstraint => match def {
            Some(NodeEnum::Constraint(k)) => constraint(k, &mut push),
            _ => Lock::AccessExclusive,
        },
        AlterTableType::AtValidateConstraint => Lock::ShareUpdateExclusive,
        AlterTableType::AtDropColumn => {
            push("drop-column", Lock::AccessExclusive, Needs::Nothing,
                "the pods still running the previous release select the column and fail until they are replaced",
                "stop using the column in a release first, then drop it in the next");
            Lock::AccessExclusive
        }
        AlterTableType::AtSetStatistics
        | AlterTableType::AtClusterOn
        | AlterTableType::AtDropCluster
        | AlterTableType::AtSetRelOptions
        | AlterTableType::AtResetRelOptions
        | AlterTableType::AtReplaceRelOptions => Lock::ShareUpdateExclusive,
        AlterTableType::AtEnableTrig
        | AlterTableType::AtDisableTrig
        | AlterTableType::AtEnableTrigAll
        | AlterTableType::AtDisableTrigAll
        | AlterTableType::AtEnableTrigUser
        | AlterTableType::AtDisableTrigUser
        | AlterTableType::AtAttachPartition => Lock::ShareRowExclusive,
        AlterTableType::AtDetachPartition => Lock::AccessExclusive,
        _ => Lock::AccessExclusive,
    };
    take(out, lock, table);
}

type Push<'a> = dyn FnMut(&'static str, Lock, Needs, &'static str, &'static str) + 'a;

fn constraint(k: &pg_query::protobuf::Constraint, push: &mut Push<'_>) -> Lock {
    let not_valid = k.skip_validation;
    match ConstrType::try_from(k.contype).unwrap_or(ConstrType::Undefined) {
        ConstrType::ConstrForeign => {
            if !not_valid {
                push("foreign-key-not-valid", Lock::ShareRowExclusive, Needs::Rows,
                    "checks every existing row under a SHARE ROW EXCLUSIVE lock on both tables: writes wait for the scan",
                    "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE: writes go on)");
            }
            Lock::ShareRowExclusive
        }
        ConstrType::ConstrCheck => {
            if !not_valid {
                push("check-not-valid", Lock::AccessExclusive, Needs::Rows,
                    "checks every existing row under an ACCESS EXCLUSIVE lock: reads and writes wait for the scan",
                    "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration");
            }
            Lock::AccessExclusive
        }
        ConstrType::ConstrUnique | ConstrType::ConstrPrimary if k.indexname.is_empty() => {
            push("constraint-builds-index", Lock::AccessExclusive, Needs::Rows,
                "builds its unique index under an ACCESS EXCLUSIVE lock: reads and writes wait for the build",
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX");
            Lock::AccessExclusive
        }
        _ => Lock::AccessExclusive,
    }
}

/// The functions a column default calls (their volatility decides whether the table is
/// rewritten; `now()` is stable, `gen_random_uuid()` and `random()` are volatile).
fn default_functions(col: &pg_query::protobuf::ColumnDef) -> Vec<String> {
    let mut exprs: Vec<&pg_query::protobuf::Node> = col.raw_default.iter().map(|b| &**b).collect();
    for n in &col.constraints {
        if let Some(NodeEnum::Constraint(k)) = n.node.as_ref() {
            if k.contype == ConstrType::ConstrDefault as i32 {
                exprs.extend(k.raw_expr.iter().map(|b| &**b));
            }
        }
    }
    let mut names = Vec::new();
    for expr in exprs {
        let Some(node) = expr.node.as_ref() else {
            continue;
        };
        let mut all = node.nodes();
        all.push((node.to_ref(), 0, pg_query::Context::None, false));
        for (n, ..) in all {
            if let NodeRef::FuncCall(f) = n {
                let parts: Vec<&str> = f
                    .funcname
                    .iter()
                    .filter_map(|p| match p.node.as_ref() {
                        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                        _ => None,
                    })
                    .collect();
                if let Some(last) = parts.last() {
                    names.push(last.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
