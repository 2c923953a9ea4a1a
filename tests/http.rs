//! `dirsync serve`'s status endpoints as a monitoring system sees them:
//! plain HTTP requests to `/healthz`, `/readyz` and `/metrics` on loopback,
//! the metrics parsed by a Prometheus text-format parser and compared with
//! the journal (read with the `sqlite3` program).

#[path = "common/serve.rs"]
mod serve;

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serve::{cheap_example_policy, free_port, sqlite, wait_until, Daemon};

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    port: u16,
}

impl Env {
    /// A config with an SQLite target at `target_url`, one inbox, and `[http]`.
    fn new(target_url: &str) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("policies")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("inbox")).expect("mkdir"); // ok: test
        fs::write(dir.join("policies/staff.toml"), cheap_example_policy()).expect("policy"); // ok: test
        let port = free_port();
        let config = format!(
            "[service]\nstate_dir = \"state\"\n\n[targets.staff]\nkind = \"sql\"\nurl = \"{target_url}\"\n\
             create_schema = true\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n[[inbox]]\nname = \"hr\"\n\
             folder = \"inbox\"\npolicy = \"staff\"\nsettle_seconds = 1\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
        );
        fs::write(dir.join("dirsync.toml"), config).expect("config"); // ok: test
        Env { _tmp: tmp, dir, port }
    }

    fn serve(&self) -> Daemon {
        serve::start_serve(&self.dir, "Web console listening")
    }

    /// `GET path` over a plain TCP connection: status, headers, body.
    fn get(&self, path: &str) -> (u16, String, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect"); // ok: test
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout"); // ok: test
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send"); // ok: test
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read"); // ok: test
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, head.to_lowercase(), body.to_string())
    }

    fn journal(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/journal.db"), q)
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

fn sample_csv() -> Vec<u8> {
    fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example/sample.csv")).expect("sample.csv")
    // ok: test
}

#[test]
fn health_readiness_and_metrics_match_the_journal() {
    let env = Env::new("sqlite://state/directory.db");
    let d = env.serve();

    let (code, head, body) = env.get("/healthz");
    assert_eq!(code, 200, "{head}{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let v = json(&body);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let (code, _, body) = env.get("/readyz");
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["ready"], true, "{body}");
    assert_eq!(v["journal"]["ok"], true);
    assert_eq!(v["targets"]["staff"]["ok"], true, "{body}");

    // A dropped file (daemon) and a command-line run: both are in the journal.
    fs::write(env.dir.join("staged.csv"), sample_csv()).expect("write"); // ok: test
    fs::rename(env.dir.join("staged.csv"), env.dir.join("inbox/sample.csv")).expect("drop"); // ok: test
    assert!(
        wait_until(Duration::from_secs(30), || env
            .journal("SELECT filed FROM runs WHERE id = 1")
            == "1"),
        "not filed:\n{}",
        d.log()
    );
    let again = env.dir.join("again.csv");
    fs::write(&again, sample_csv()).expect("write"); // ok: test
    let out = Command::new(BIN)
        .current_dir(&env.dir)
        .args(["--config", "dirsync.toml", "apply"])
        .arg(&again)
        .output()
        .expect("apply"); // ok: test
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, head, body) = env.get("/metrics");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("content-type: application/openmetrics-text"), "{head}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parse"); // ok: test
    assert_eq!(
        sample(&scrape, "dirsync_runs_total", &[("inbox", "hr"), ("state", "done")]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&scrape, "dirsync_runs_total", &[("inbox", "(cli)"), ("state", "done")]),
        Some(1.0),
        "{body}"
    );
    // Rows by change: the sum of the journal's counts of both runs.
    let new_rows: f64 = env
        .journal("SELECT json_extract(counts, '$.changes.new') FROM runs")
        .lines()
        .filter_map(|l| l.parse::<f64>().ok())
        .sum();
    assert!(new_rows > 0.0);
    assert_eq!(
        sample(&scrape, "dirsync_rows_total", &[("name", "new")]),
        Some(new_rows),
        "{body}"
    );
    let errors: f64 = env
        .journal("SELECT json_extract(counts, '$.changes.error') FROM runs")
        .lines()
        .filter_map(|l| l.parse::<f64>().ok())
        .sum();
    assert_eq!(
        sample(&scrape, "dirsync_rows_total", &[("name", "error")]),
        Some(errors),
        "{body}"
    );
    assert_eq!(
        sample(&scrape, "dirsync_target_up", &[("name", "staff")]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(sample(&scrape, "dirsync_held_changes", &[]), Some(0.0), "{body}");
    assert!(
        sample(&scrape, "dirsync_last_success_timestamp_seconds", &[("name", "hr")]).is_some_and(|t| t > 1.6e9),
        "{body}"
    );
    assert!(body.contains("dirsync_run_duration_seconds_count 2"), "{body}");

    let (code, _, body) = env.get("/nope");
    assert_eq!(code, 404);
    assert!(body.contains("There is no such page"), "{body}");
}

#[test]
fn readyz_says_which_target_is_down_and_why() {
    // A database that cannot be opened: its "folder" is a file.
    let env = Env::new("sqlite://policies/staff.toml/directory.db");
    let _d = env.serve();
    let (code, _, body) = env.get("/readyz");
    assert_eq!(code, 503, "{body}");
    let v = json(&body);
    assert_eq!(v["ready"], false);
    assert_eq!(v["journal"]["ok"], true);
    assert_eq!(v["targets"]["staff"]["ok"], false, "{body}");
    assert!(
        v["targets"]["staff"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    let (code, _, body) = env.get("/metrics");
    assert_eq!(code, 200);
    assert!(body.contains("dirsync_target_up{name=\"staff\"} 0"), "{body}");
}

#[test]
fn the_console_listens_on_loopback_only_without_tls_or_a_proxy() {
    let env = Env::new("sqlite://state/directory.db");
    let cfg = fs::read_to_string(env.dir.join("dirsync.toml")).expect("config"); // ok: test
    fs::write(
        env.dir.join("dirsync.toml"),
        cfg.replace(&format!("127.0.0.1:{}", env.port), "0.0.0.0:8080"),
    )
    .expect("config"); // ok: test
    let out = Command::new(BIN)
        .current_dir(&env.dir)
        .args(["--config", "dirsync.toml", "config", "check"])
        .output()
        .expect("config check"); // ok: test
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs tls_cert and tls_key, or a trusted_proxy"), "{err}");
}

#[test]
fn config_check_warns_when_two_configs_share_one_sqlite_journal() {
    let env = Env::new("sqlite://state/directory.db");
    let d = env.serve();
    drop(d);
    let cfg = fs::read_to_string(env.dir.join("dirsync.toml")).expect("config"); // ok: test
    let check = |name: &str| {
        let out = Command::new(BIN)
            .current_dir(&env.dir)
            .args(["--config", name, "config", "check"])
            .output()
            .expect("config check"); // ok: test
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The same state folder: the same SQLite journal.
    fs::write(env.dir.join("second.toml"), &cfg).expect("config"); // ok: test
    let err = check("second.toml");
    assert!(
        err.contains("warning: the SQLite journal") && err.contains("dirsync.toml") && err.contains("postgres://"),
        "{err}"
    );
    assert!(
        !check("dirsync.toml").contains("warning"),
        "a config does not share with itself"
    );
    // Its own state folder: no warning.
    fs::write(
        env.dir.join("third.toml"),
        cfg.replace("state_dir = \"state\"", "state_dir = \"state3\""),
    )
    .expect("config"); // ok: test
    assert!(!check("third.toml").contains("warning"));
}
