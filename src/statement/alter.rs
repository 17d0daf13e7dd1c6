//! What each `ALTER TABLE` subcommand locks and which candidates it raises; the strictest
//! subcommand's lock is the statement's (the ALTER TABLE page of the PostgreSQL docs).

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::{NodeEnum, NodeRef};

use super::{strings, take, Candidate, Lock, Needs, Statement, Table};

pub(super) fn alter_cmd(c: &pg_query::protobuf::AlterTableCmd, table: &Table, out: &mut Statement) {
    let kind = AlterTableType::try_from(c.subtype).unwrap_or(AlterTableType::Undefined);
    let def = c.def.as_ref().and_then(|d| d.node.as_ref());
    let mut found = Vec::new();
    let mut push = |rule, lock, needs, why, fix| {
        found.push(Candidate {
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
                add_column(col, &mut push);
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
            let to = match def {
                Some(NodeEnum::ColumnDef(col)) if col.raw_default.is_none() => {
                    col.type_name.as_ref().and_then(new_type)
                }
                // A USING expression always rewrites.
                _ => None,
            };
            push("alter-column-type", Lock::AccessExclusive, Needs::Rewrite { column: c.name.clone(), to },
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
        | AlterTableType::AtDisableTrigUser => Lock::ShareRowExclusive,
        // PostgreSQL 12+: the parent only takes SHARE UPDATE EXCLUSIVE; the partition being
        // attached is locked ACCESS EXCLUSIVE and scanned unless a CHECK proves the bound.
        AlterTableType::AtAttachPartition => {
            if let Some(NodeEnum::PartitionCmd(p)) = def {
                found.push(Candidate {
                    rule: "attach-partition-scan",
                    lock: Lock::AccessExclusive,
                    table: super::name(p.name.as_ref()),
                    needs: Needs::Rows,
                    why: "scans the partition under an ACCESS EXCLUSIVE lock to prove every row fits the bound",
                    fix: "first ADD CONSTRAINT ... CHECK (<the bound>) NOT VALID and VALIDATE it on the partition: ATTACH then skips the scan",
                });
            }
            Lock::ShareUpdateExclusive
        }
        AlterTableType::AtDetachPartition => match def {
            Some(NodeEnum::PartitionCmd(p)) if p.concurrent => Lock::ShareUpdateExclusive,
            _ => {
                push("detach-partition-not-concurrent", Lock::AccessExclusive, Needs::Rows,
                    "takes an ACCESS EXCLUSIVE lock on the partitioned table: every query on it waits",
                    "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), alone in its migration");
                Lock::AccessExclusive
            }
        },
        _ => Lock::AccessExclusive,
    };
    out.candidates.extend(found);
    take(out, lock, table);
}

type Push<'a> = dyn FnMut(&'static str, Lock, Needs, &'static str, &'static str) + 'a;

fn add_column(col: &pg_query::protobuf::ColumnDef, push: &mut Push<'_>) {
    let has = |t: ConstrType| {
        col.constraints.iter().any(
            |n| matches!(n.node.as_ref(), Some(NodeEnum::Constraint(k)) if k.contype == t as i32),
        )
    };
    let has_default = col.raw_default.is_some() || has(ConstrType::ConstrDefault);
    let not_null = col.is_not_null || has(ConstrType::ConstrNotnull);
    let serial = col
        .type_name
        .as_ref()
        .and_then(new_type)
        .is_some_and(|(t, _)| {
            matches!(
                t.as_str(),
                "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
            )
        });
    let functions = default_functions(col);
    if serial || has(ConstrType::ConstrIdentity) || has(ConstrType::ConstrGenerated) {
        push("add-column-rewrite", Lock::AccessExclusive, Needs::Rows,
            "a serial, identity or stored generated column is filled row by row: the whole table is rewritten under an ACCESS EXCLUSIVE lock",
            "add a plain nullable column, backfill it in batches, then attach the sequence or identity");
    } else if not_null && !has_default {
        push("add-column-not-null-without-default", Lock::AccessExclusive, Needs::FailsWithRows,
            "a NOT NULL column without a default cannot be added to a table that has rows (23502): the migration fails",
            "add it with a DEFAULT, or nullable, backfill, then SET NOT NULL");
    } else if has_default {
        if !functions.is_empty() {
            push("add-column-volatile-default", Lock::AccessExclusive, Needs::VolatileDefault(functions.clone()),
                "a volatile default rewrites the whole table under an ACCESS EXCLUSIVE lock",
                "add the column without the default (or with a constant one), backfill in batches, then SET DEFAULT");
        }
        push("add-column-default-before-11", Lock::AccessExclusive, Needs::OldServerDefault(functions),
            "before PostgreSQL 11 a column added with a default, even a constant one, is filled by rewriting the whole table under an ACCESS EXCLUSIVE lock",
            "add the column without a default, SET DEFAULT in a second statement (new rows only), backfill the existing rows in batches; or upgrade to PostgreSQL 11+");
    }
}

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
        ConstrType::ConstrUnique | ConstrType::ConstrPrimary | ConstrType::ConstrExclusion
            if k.indexname.is_empty() =>
        {
            push("constraint-builds-index", Lock::AccessExclusive, Needs::Rows,
                "builds its index under an ACCESS EXCLUSIVE lock: reads and writes wait for the build",
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX");
            Lock::AccessExclusive
        }
        _ => Lock::AccessExclusive,
    }
}

/// A type as written, for the catalog to resolve (`varchar`, `public.mood`, `text[]`) with its
/// modifier as PostgreSQL stores it (`varchar(n)`: n + 4; none: -1); `None` when a modifier is
/// one db-init does not compute (the change is then taken to rewrite).
pub(super) fn new_type(t: &pg_query::protobuf::TypeName) -> Option<(String, i32)> {
    let names = strings(&t.names);
    // The parser spells built-in types as pg_catalog.<internal name>.
    let names: Vec<&str> = match names.as_slice() {
        ["pg_catalog", rest @ ..] if !rest.is_empty() => rest.to_vec(),
        _ => names,
    };
    let mut name = names.join(".");
    for _ in &t.array_bounds {
        name.push_str("[]");
    }
    let mods: Vec<Option<i32>> = t
        .typmods
        .iter()
        .map(|m| match m.node.as_ref() {
            Some(NodeEnum::AConst(c)) => match &c.val {
                Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i.ival),
                _ => None,
            },
            _ => None,
        })
        .collect();
    match (name.as_str(), mods.as_slice()) {
        (_, []) => Some((name, -1)),
        ("varchar", [Some(n)]) => Some((name, n.checked_add(4)?)),
        _ => None,
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
                if let Some(last) = strings(&f.funcname).last() {
                    names.push(last.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}
