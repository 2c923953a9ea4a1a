//! CI regression guard (issue 16): a re-run of an unchanged 10k-row file
//! writes nothing to the target.
//!
//! The embedded SQLite target as a newcomer configures it (the example
//! policy, memberships in a second table), loaded with a 10,000-row roster
//! from `dirsync-genroster`. Writes are counted by triggers that the
//! `sqlite3` program installs after the load: an independent client, so a
//! write that dirsync's own counters missed still shows. Speed work on the
//! read path (a faster snapshot reader that dropped a column or misread a
//! NULL) would turn every re-run into 10,000 updates; this fails first.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/serve.rs"]
mod serve;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");
const ROWS: usize = 10_000;

/// The tables the policy writes, and the statements counted on each.
const COUNTED: [&str; 2] = ["users", "user_groups"];

struct Target {
    dir: tempfile::TempDir,
}

impl Target {
    fn new() -> Target {
        let dir = tempfile::tempdir().expect("tempdir"); // ok: test
        std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir"); // ok: test
        std::fs::write(
            dir.path().join("dirsync.toml"),
            "[service]\nstate_dir = \"state\"\n[targets.staff]\nkind = \"sql\"\n\
             url = \"sqlite://state/directory.db\"\ncreate_schema = true\n\
             [policies]\nstaff = \"policies/staff.toml\"\n",
        )
        .expect("write config"); // ok: test
        let policy = serve::cheap_example_policy()
            // No safety limit may hold what a regression would write.
            .replace("adds = { max = 10000 }", "adds = { max = 20000 }")
            .replace("updates = { max_percent = 50.0 }", "updates = { max_percent = 100.0 }")
            .replace("generate = \"new\"", "generate = \"never\"");
        std::fs::write(dir.path().join("policies/staff.toml"), policy).expect("write policy"); // ok: test
        Target { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db(&self) -> PathBuf {
        self.path("state/directory.db")
    }

    /// `dirsync apply FILE`; the `change` column of its results file.
    fn apply(&self, file: &Path) -> Vec<String> {
        let results = self.path("results.csv");
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.path("dirsync.toml"))
            .arg("apply")
            .arg(file)
            .arg("--results")
            .arg(&results)
            .output()
            .expect("run dirsync"); // ok: test
        assert!(
            out.status.success(),
            "apply {}: {}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut r = csv::Reader::from_path(&results).expect("results file"); // ok: test
        let col = r
            .headers()
            .expect("results header") // ok: test
            .iter()
            .position(|h| h == "change")
            .expect("a change column"); // ok: test
        r.records()
            .map(|rec| rec.expect("results record")[col].to_string()) // ok: test
            .collect()
    }

    /// Count every INSERT, UPDATE and DELETE on the target's tables from now on.
    fn count_writes(&self) {
        let mut sql = String::from("CREATE TABLE IF NOT EXISTS writes (n INTEGER NOT NULL); DELETE FROM writes; INSERT INTO writes VALUES (0);");
        for t in COUNTED {
            for op in ["INSERT", "UPDATE", "DELETE"] {
                sql.push_str(&format!(
                    "CREATE TRIGGER IF NOT EXISTS count_{t}_{op} AFTER {op} ON {t} BEGIN UPDATE writes SET n = n + 1; END;"
                ));
            }
        }
        serve::sqlite(&self.db(), &sql);
    }

    fn writes(&self) -> u64 {
        serve::sqlite(&self.db(), "SELECT n FROM writes")
            .parse()
            .expect("a write count") // ok: test
    }

    /// Rows, memberships and leavers as `sqlite3` reads them.
    fn contents(&self) -> String {
        serve::sqlite(
            &self.db(),
            "SELECT count(*), (SELECT count(*) FROM user_groups), sum(status = 'leaver') FROM users",
        )
    }
}

fn count(changes: &[String], what: &str) -> usize {
    changes.iter().filter(|c| *c == what).count()
}

fn genroster(t: &Target, name: &str, extra: &[&str]) -> PathBuf {
    let out = t.path(name);
    let status = Command::new(env!("CARGO_BIN_EXE_dirsync-genroster"))
        .args(["--rows", &ROWS.to_string(), "--seed", "7"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run dirsync-genroster"); // ok: test
    assert!(status.success());
    out
}

#[test]
fn issue_16_rerun_of_an_unchanged_10k_file_writes_nothing() {
    let t = Target::new();
    let base = genroster(&t, "base.csv", &[]);
    let next = genroster(&t, "next.csv", &["--next-night", "1.5"]);

    let load = t.apply(&base);
    assert_eq!(count(&load, "new"), ROWS, "the initial load adds every row");
    let loaded = t.contents();
    t.count_writes();

    // The same file again: every row unchanged, not one statement written.
    let again = t.apply(&base);
    assert_eq!(t.writes(), 0, "a re-run of the unchanged file wrote to the target");
    assert_eq!(count(&again, "unchanged"), ROWS, "a re-run finds every row unchanged");
    assert_eq!(t.contents(), loaded);

    // The next night writes its churn; applying it a second time writes nothing.
    let night = t.apply(&next);
    let changed = night.iter().filter(|c| *c != "unchanged").count();
    assert!(
        changed > 0 && count(&night, "unchanged") > ROWS * 9 / 10,
        "{changed} changes"
    );
    assert!(t.writes() > 0, "the night's changes reached the target");
    let after_night = t.contents();
    t.count_writes();
    let again = t.apply(&next);
    assert_eq!(t.writes(), 0, "a re-run of the night wrote to the target");
    assert_eq!(
        count(&again, "unchanged"),
        again.len(),
        "a re-run of the night finds every row unchanged"
    );
    assert_eq!(t.contents(), after_night);
}
