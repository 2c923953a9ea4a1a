//! Issue 14: a future leaver is disabled by `dirsync serve` on the day
//! after their last day, without a new file. The daemon is restarted "on
//! the due day" with `DIRSYNC_CLOCK_OFFSET` (never by sleeping); the lock
//! is read back with ldapsearch.

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Days};

use super::env::{Env, Kind, HEADER};
use super::{kind, serve, BOB, JANE};

/// A day from today (UTC), ISO 8601.
fn day(offset: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    DateTime::from_timestamp(now, 0)
        .and_then(|t| t.date_naive().checked_add_days(Days::new(offset)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn serve(env: &Env, offset: &str, log: &str) -> serve::Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    cmd.current_dir(env.path(""))
        .arg("--config")
        .arg(env.path("dirsync.toml"))
        .arg("serve")
        .env("DIRSYNC_LOG", "info")
        .env("DIRSYNC_CLOCK_OFFSET", offset)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC");
    let d = serve::Daemon::spawn(cmd, env.path(log));
    d.wait_log("Ready.", Duration::from_secs(30));
    d
}

fn filed(env: &Env, d: &serve::Daemon, id: i64) {
    let q = format!("SELECT state FROM runs WHERE id = {id} AND filed = 1");
    let ok = serve::wait_until(Duration::from_secs(60), || {
        serve::sqlite(&env.path("state/journal.db"), &q) == "done"
    });
    assert!(ok, "run {id} not done and filed:\n{}", d.log());
}

matrix!(a_future_leaver_is_disabled_by_the_daemon_on_the_due_day);
fn a_future_leaver_is_disabled_by_the_daemon_on_the_due_day(kind: Kind) {
    let env = Env::start(kind, "ignore", "[lifecycle]\ntime_zone = \"Europe/London\"\n");
    let mut cfg = std::fs::read_to_string(env.path("dirsync.toml")).expect("config");
    cfg.push_str(
        "\n[mail]\nfrom = \"dirsync <dirsync@example.org>\"\ntransport = \"file\"\nfolder = \"mail\"\n\n\
         [[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"p\"\nsubmitter = \"hr@example.org\"\nsettle_seconds = 1\n",
    );
    std::fs::write(env.path("dirsync.toml"), cfg).expect("config");
    std::fs::create_dir_all(env.path("inbox")).expect("inbox");
    let last_day = day(1);
    let f = env.csv_with(
        &format!("{HEADER},Last Day"),
        &[&format!("{JANE},{last_day}"), &format!("{BOB},")],
    );

    let mut d = serve(&env, "0", "serve-0.log");
    std::fs::rename(&f, env.path("inbox/hr.csv")).expect("drop");
    filed(&env, &d, 1);
    assert!(env.locked().is_empty(), "Jane's last day is still ahead");
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));

    let mut d = serve(&env, "3d", "serve-1.log");
    d.wait_log("Scheduled changes are due", Duration::from_secs(30));
    filed(&env, &d, 2);
    assert_eq!(env.locked(), ["jsmith"]);
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));
}
