//! Tests of the Drizzle v1 rules against the real fixtures (tests/fixtures/drizzle-v1).
use super::*;
use std::{fs, path::PathBuf};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/drizzle-v1/")
        .join(rel)
}

/// A `*.tsv` fixture (`id hash created_at name applied_at`); `v0` drops `name`.
fn tsv(rel: &str, v0: bool) -> Vec<HistoryRow> {
    let text = fs::read_to_string(fixture(rel)).unwrap();
    let row = |c: Vec<&str>| HistoryRow {
        id: c[0].parse().unwrap(),
        hash: c[1].into(),
        created_at: c[2].parse().ok(),
        name: (!v0).then(|| c[3].to_string()),
    };
    text.lines()
        .skip(1)
        .map(|l| row(l.split('\t').collect()))
        .collect()
}

/// A folder as Drizzle reads it: entries holding `migration.sql`, in Drizzle's order.
fn folder(rel: &str) -> Vec<LocalMigration> {
    let dir = fixture(rel);
    let entries = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name());
    let mut names: Vec<String> = entries.map(|n| n.into_string().unwrap()).collect();
    names.retain(|n| dir.join(n).join("migration.sql").exists());
    sort_like_drizzle(&mut names, String::as_str).unwrap();
    let local = |name: String| LocalMigration {
        hash: migration_hash(&fs::read(dir.join(&name).join("migration.sql")).unwrap()),
        created_at_millis: parse_folder_name(&name).map_or(i64::MIN, |p| p.created_at_millis),
        name,
    };
    names.into_iter().map(local).collect()
}

/// The `(id, name)` pairs of a v1 TSV.
fn named(rel: &str) -> Vec<UpgradeMatch> {
    let m = |r: HistoryRow| UpgradeMatch {
        id: r.id,
        name: r.name.unwrap_or_default(),
    };
    tsv(rel, false).into_iter().map(m).collect()
}

#[test]
fn fresh_runs_write_the_fixture_rows() {
    for case in [
        "basic/drizzle basic.expected-history.tsv",
        "upgraded/drizzle upgraded.fresh-db.expected-history.tsv",
        "scenarios/mixed/without-journal upgraded.fresh-db.expected-history.tsv",
        "scenarios/out-of-order scenarios/out-of-order.fresh-db.expected-history.tsv",
        "scenarios/sort-order scenarios/sort-order.expected-history.tsv",
        "scenarios/bom-crlf/crlf scenarios/bom-crlf.crlf.expected-history.tsv",
    ] {
        let (dir, rows) = case.split_once(' ').unwrap();
        let local = folder(dir);
        let got = local
            .iter()
            .map(|m| (&m.name, &m.hash, Some(m.created_at_millis)));
        let want = tsv(rows, false);
        assert!(got.eq(want
            .iter()
            .map(|r| (r.name.as_ref().unwrap(), &r.hash, r.created_at))));
        let canonical = |m: &LocalMigration| parse_folder_name(&m.name).unwrap().canonical;
        assert!(local
            .iter()
            .all(|m| canonical(m) == is_v1_folder_name(&m.name)));
    }
    let bom = "edca5e2d5c291efa13a6fee98f810b99506de480bc3b9586f78488da985b0ec4";
    assert_eq!(folder("scenarios/bom-crlf/bom-crlf")[0].hash, bom);
    assert_eq!(
        migration_hash(b"a\xffb"),
        migration_hash("a\u{fffd}b".as_bytes())
    );
}

#[test]
fn folder_names() {
    assert!(is_v1_folder_name("20261121125744_sweet_black_bolt"));
    let bad = [
        "hotfix",
        "20261121130000-gamma",
        "20261121130000_",
        "2026112113000a_x",
        "0006_x",
    ];
    assert!(!bad.iter().any(|n| is_v1_folder_name(n)));
    // Values from drizzle-orm's own formatToMillis.
    for (name, millis, canonical) in [
        ("20261121130000_alpha", 1_795_266_000_000, true),
        ("20261121130000-gamma", 1_795_266_000_000, false),
        ("00991121000000_x", 943_142_400_000, false), // year 99 = 1999
        ("20261131000000_x", 1_796_083_200_000, false), // Nov 31 = Dec 1
        ("20261121125960_x", 1_795_266_000_000, false), // second 60
        (" 2026112113000", -55_633_955_400_000, false), // " 202" = year 202
        ("+2026+1+1+1+1+1x", -55_779_663_539_000, false), // signs, stops at non-digits
    ] {
        let parsed = parse_folder_name(name).map(|p| (p.created_at_millis, p.canonical));
        assert_eq!(parsed, Ok((millis, canonical)), "{name}");
    }
    let err = |n: &str| {
        parse_folder_name(n)
            .map_err(|e| (e.field, e.text))
            .unwrap_err()
    };
    assert_eq!(err("hotfix"), ("year", "hotf".into()));
    assert_eq!(err("2026-11-21_x"), ("minute", "_x".into()));
    assert_eq!(err("2026112113"), ("minute", "".into()));
}

#[test]
fn drizzle_order() {
    let sorted = |names: &str| {
        let mut v: Vec<&str> = names.split('|').collect();
        sort_like_drizzle(&mut v, |s| s).map(|()| v.join("|"))
    };
    let scenario = "20261121130000-gamma|20261121130000_Beta|20261121130000_alpha|20261121125959_x";
    let want = "20261121125959_x|20261121130000_alpha|20261121130000_Beta|20261121130000-gamma";
    assert_eq!(sorted(scenario).unwrap(), want);
    // Byte order differs on each step: `_` < `-` < punctuation < digits < letters,
    // case only breaks ties (lowercase first), ASCII controls but TAB..CR are ignored.
    let all = "B|Ab|a.b|ab|a0|aB|a-b|A|a_b|a|0|-|_|AB|b|a\u{1}|a\tb|a b";
    let want = "_|-|0|a|a\u{1}|A|a\tb|a b|a_b|a-b|a.b|a0|ab|aB|Ab|AB|b|B";
    assert_eq!(sorted(all).unwrap(), want);
    assert_eq!(drizzle_cmp("x_Beta", "x-gamma"), Ordering::Less);
    // Non-ASCII deciding: refused; non-ASCII after the deciding characters: fine.
    let err = sorted("20261121130000_é|20261121130000_f").unwrap_err();
    assert_eq!(
        [err.first, err.second],
        ["20261121130000_f", "20261121130000_é"]
    );
    assert!(sorted("20261121130000_aaé|20261121130001_é|20261121130000_b").is_ok());
    assert!(sorted("x_e\u{301}|x_e").is_err());
}

#[test]
fn pending_rule() {
    let at_basic = tsv("basic.expected-history.tsv", false);
    let check = |dir: &str| {
        let (local, mut p) = (folder(dir), pending(&at_basic, &folder(dir)));
        let run: Vec<String> = p.pending.drain(..).map(|i| local[i].name.clone()).collect();
        (run.join(" "), p)
    };
    let none = PendingCheck::default();
    assert_eq!(
        check("scenarios/out-of-order"),
        ("20261121125800_feature_branch".into(), none.clone())
    );
    assert_eq!(check("scenarios/edited-applied"), (String::new(), none));
    let (run, p) = check("scenarios/renamed-applied");
    assert_eq!(
        (run.as_str(), p.missing),
        ("20261121125809_seed_like_data", vec![])
    );
    let recorded_name = "20261121125808_seed_like_data".to_string();
    assert_eq!(
        p.renamed,
        [Renamed {
            row_id: 6,
            recorded_name,
            local_name: run
        }]
    );
    let (run, p) = check("scenarios/missing-folder");
    assert_eq!(
        (run, p.missing),
        (
            String::new(),
            vec![(4, "20261121125759_slim_nextwave".into())]
        )
    );
    assert_eq!(check("scenarios/bad-name").0, "hotfix");
    let mut rows = at_basic.clone();
    rows[0].name = None;
    let p = pending(&rows, &folder("basic/drizzle"));
    assert_eq!((p.pending, p.unnamed), (vec![0], vec![1]));
}

#[test]
fn upgrade_matches_fixtures() {
    let after = "upgraded.after-upgrade-history.tsv";
    let v0 = tsv(after, true);
    let upgrade = |rows: &[HistoryRow], dir: &str| upgrade_v0(rows, &folder(dir));
    for dir in [
        "upgraded/drizzle",
        "scenarios/mixed/without-journal",
        "scenarios/upgrade-matching/edited",
    ] {
        assert_eq!(upgrade(&v0, dir).unwrap().matches, named(after), "{dir}");
    }
    let renamed = upgrade(&v0, "scenarios/upgrade-matching/renamed")
        .unwrap()
        .matches;
    assert_eq!(
        renamed,
        named("scenarios/upgrade-matching.renamed.after-upgrade-history.tsv")
    );
    let missing = upgrade(&v0, "scenarios/upgrade-matching/missing").unwrap_err();
    assert_eq!(missing.to_string(), "While upgrading your database migrations table we found 1 migrations (ids: 4) in the database that do not match any local migration. This means that some migrations were applied to the database but are missing from the local environment");
    let same = "scenarios/upgrade-matching.same-second.after-upgrade-history.tsv";
    let plan = upgrade(&tsv(same, true), "scenarios/upgrade-matching/same-second").unwrap();
    assert_eq!(plan.matches, named(same));
    let edited = upgrade(
        &tsv(same, true),
        "scenarios/upgrade-matching/same-second-edited",
    );
    assert_eq!(edited.unwrap_err().ids, vec![5]);
    // A duplicated row gets the same name, NULL created_at goes by hash, rows in id order.
    let mut rows: Vec<HistoryRow> = v0.iter().rev().cloned().collect();
    rows.push(HistoryRow {
        id: 7,
        ..v0[5].clone()
    });
    rows.push(HistoryRow {
        id: 0,
        created_at: None,
        ..v0[2].clone()
    });
    let plan = upgrade(&rows, "upgraded/drizzle").unwrap();
    let ids: Vec<(i64, &str)> = plan.matches.iter().map(|m| (m.id, &m.name[15..])).collect();
    assert_eq!(&ids[..2], [(0, "worried_microbe"), (1, "light_mephisto")]);
    assert_eq!(&ids[6..], [(6, "seed_like_data"), (7, "seed_like_data")]);
    assert_eq!(plan.run_order, [0, 1, 2, 3, 4, 5]);
    let lm = |name: &str, millis| LocalMigration {
        name: name.into(),
        hash: name.into(),
        created_at_millis: millis,
    };
    let plan = upgrade_v0(&[], &[lm("b", 5), lm("a", 1), lm("c", 5)]).unwrap();
    assert_eq!(plan.run_order, [1, 0, 2]);
}

#[test]
fn sql_text() {
    let v0 = tsv("upgraded.after-upgrade-history.tsv", true);
    let plan = upgrade_v0(&v0, &folder("upgraded/drizzle")).unwrap();
    let log = fs::read_to_string(fixture("upgraded.upgrade-statements.sql")).unwrap();
    let stmts = upgrade_statements("drizzle", "__drizzle_migrations", &plan.matches);
    assert_eq!(stmts.len(), 8);
    assert!(stmts.iter().take(2).all(|s| log.lines().any(|l| l == s)));
    for (m, s) in plan.matches.iter().zip(stmts.iter().skip(2)) {
        let sent = s
            .replacen(&literal(&m.name), "$1", 1)
            .replace(&format!("= {}", m.id), "= $2");
        let params = format!("parameters: $1 = '{}', $2 = '{}'", m.name, m.id);
        assert!(log.contains(&format!("{params}\n{sent}\n")), "{s}");
    }
    let odd = [UpgradeMatch {
        id: 3,
        name: "it's\\x".into(),
    }];
    let update =
        r#"UPDATE "o""s"."T" SET "name" = E'it''s\\x', "applied_at" = NULL WHERE "id" = 3"#;
    assert_eq!(upgrade_statements("o\"s", "T", &odd)[2], update);
    let ddl = "\n\t\t\tCREATE TABLE IF NOT EXISTS \"ops\".\"Schema_History\" (\n\t\t\t\tid SERIAL PRIMARY KEY,\n\t\t\t\thash text NOT NULL,\n\t\t\t\tcreated_at bigint,\n\t\t\t\tname text,\n\t\t\t\tapplied_at timestamp with time zone DEFAULT now()\n\t\t\t)\n\t\t";
    assert_eq!(create_table_sql("ops", "Schema_History"), ddl);
    let insert = r#"insert into "drizzle"."__drizzle_migrations" ("hash", "created_at", "name") values(E'5d5f', 1795265864000, E'x''y')"#;
    let t = "__drizzle_migrations";
    assert_eq!(
        insert_sql("drizzle", t, "x'y", "5d5f", 1_795_265_864_000),
        insert
    );
}
