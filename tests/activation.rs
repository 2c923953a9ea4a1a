//! Issue 18, activation mails: with `[passwords] deliver = "activation"` a
//! new account is created without a usable password and its user gets a
//! one-time link (read back from the file transport's `.eml`), opens the
//! console's `/activate/TOKEN` page and sets a password there. Independent
//! checks: `sqlite3` reads the target and the journal, `argon2` verifies the
//! hash the page wrote.

#[path = "common/activation_env.rs"]
mod activation_env;
#[path = "common/mime.rs"]
#[allow(dead_code)] // the SMTP half is tests/mail.rs's
mod mime;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/web.rs"]
mod web;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use activation_env::{argon2_ok, path_of, roster, sha256_hex, token_of, Env, BIN};
use serve::wait_until;

#[test]
fn new_users_get_a_link_not_a_password_and_the_journal_holds_only_its_hash() {
    let env = Env::new(|p| p);
    let (code, out, err) = env.apply("hr.csv", &roster(&["jsmith", "akhan"]));
    assert_eq!(code, 0, "{out}\n{err}");
    // Created without a usable password.
    assert_eq!(
        env.db("SELECT username, password_hash IS NULL FROM users ORDER BY 1"),
        "akhan|1\njsmith|1"
    );
    // One activation mail each, none with a password; no credentials mail.
    let mails = env.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    for (to, subject, body) in &mails {
        assert!(subject.contains("choose your password"), "{subject}");
        assert!(!body.contains("Password:"), "{body}");
        assert!(to.ends_with("@example.org"));
    }
    let link = env.link_of("jsmith@example.org");
    let token = token_of(&link);
    assert_eq!(token.len(), 43, "256 bits, base64url: {link}");
    // The journal: the hash, never the token; the sealed copy is forgotten.
    let stored = env.journal(
        "SELECT token_hash, user_key, used_at IS NULL, voided_at IS NULL FROM activations WHERE user_key = 'jsmith'",
    );
    assert_eq!(stored, format!("{}|jsmith|1|1", sha256_hex(token)));
    let dump = Command::new("sqlite3")
        .arg(env.dir.join("state/journal.db"))
        .arg(".dump")
        .output()
        .expect("sqlite3");
    assert!(
        !String::from_utf8_lossy(&dump.stdout).contains(token),
        "the token is in the journal"
    );
    assert_eq!(env.journal("SELECT COUNT(*) FROM run_secrets"), "0");
    let results = fs::read_to_string(env.dir.join("hr.results.csv")).expect("results");
    assert_eq!(results.matches("activation mailed").count(), 2, "{results}");
    assert!(!results.contains(token));
    // `runs show` lists the pending links.
    let (_, show, _) = env.cli(&["runs", "show", "1"], "");
    assert!(
        show.contains("activations") && show.contains("jsmith") && show.contains("pending"),
        "{show}"
    );
}

#[test]
fn send_at_holds_the_activation_mail_and_the_results_say_pending() {
    // Two hours from now (UTC): the mail waits.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 7200;
    let at = format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60);
    let env = Env::new(|p| p.replace("# send_at = \"08:00\"", &format!("send_at = \"{at}\"")));
    let (code, out, err) = env.apply("hr.csv", &roster(&["jsmith"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let results = fs::read_to_string(env.dir.join("hr.results.csv")).expect("results");
    assert!(results.contains("activation pending"), "{results}");
    assert!(env.mails().is_empty(), "held until send_at");
    let (_, list, _) = env.cli(&["mail", "list"], "");
    assert!(list.contains("activation"), "{list}");
}

/// kill -9 of an apply while it writes, then apply again: every new user
/// gets exactly one activation mail, and its link is the one journaled.
#[test]
fn a_resumed_run_mails_each_link_once() {
    let env = Env::new(|p| p);
    let users: Vec<String> = (0..200).map(|i| format!("user{i:03}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    fs::write(env.dir.join("hr.csv"), roster(&names)).expect("roster");
    let mut child = Command::new(BIN)
        .current_dir(&env.dir)
        .args(["--config", "dirsync.toml", "apply", "hr.csv"])
        .env("DIRSYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("apply");
    let issued = || {
        env.dir.join("state/journal.db").exists()
            && env
                .journal("SELECT COUNT(*) FROM activations")
                .parse::<usize>()
                .unwrap_or(0)
                > 0
    };
    let ok = wait_until(Duration::from_secs(60), || {
        issued() || matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(ok, "no activation journaled");
    let _ = child.kill();
    let _ = child.wait();
    let (code, out, err) = env.cli(&["apply", "hr.csv"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.db("SELECT COUNT(*) FROM users WHERE password_hash IS NULL"), "200");
    let mails = env.mails();
    assert_eq!(mails.len(), 200, "one mail per user");
    for u in &users {
        let link = env.link_of(&format!("{u}@example.org"));
        let row = env.journal(&format!(
            "SELECT COUNT(*) FROM activations WHERE token_hash = '{}' AND voided_at IS NULL",
            sha256_hex(token_of(&link))
        ));
        assert_eq!(row, "1", "{u}'s mailed link is the journaled one");
    }
}

/// The page as a user meets it: the form, two passwords that differ, one
/// too short, no form token, then a good one (verified with argon2 against
/// the hash `sqlite3` reads); the link then fails; an expired link fails; a
/// resend (command line, then the run page's button) voids the old link and
/// the new one works; of two concurrent uses one wins; a stream of unknown
/// links from one address is stopped.
#[test]
fn the_link_sets_a_password_once_and_every_other_use_is_refused_in_plain_words() {
    let env = Env::new(|p| p);
    let (code, _, err) = env.cli(
        &["http", "add-user", "alice", "--role", "operator"],
        "correct horse battery\n",
    );
    assert_eq!(code, 0, "{err}");
    let users = ["jsmith", "akhan", "bnguyen", "mobrien", "plee"];
    let (code, out, err) = env.apply("hr.csv", &roster(&users));
    assert_eq!(code, 0, "{out}\n{err}");
    let daemon = env.serve();
    let mut web = web::Client::new(env.port);

    let path = path_of(&env, &env.link_of("jsmith@example.org"));
    let page = web.get(&path);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("jsmith") && page.text().contains("at least 12 characters"));
    let first = "a long enough password";
    let r = web.post_form(
        &path,
        &[
            ("csrf", &page.csrf()),
            ("password", first),
            ("confirm", "another long password"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("not the same"), "{}", r.text());
    assert!(!r.text().contains(first), "the password is never echoed");
    let r = web.post_form(
        &path,
        &[("csrf", &r.csrf()), ("password", "short"), ("confirm", "short")],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("too short: use at least 12 characters"),
        "{}",
        r.text()
    );
    let r = web.post_form(&path, &[("csrf", "forged"), ("password", first), ("confirm", first)]);
    assert_eq!(r.status, 403);
    assert_eq!(
        env.db("SELECT password_hash IS NULL FROM users WHERE username = 'jsmith'"),
        "1"
    );

    let chosen = "Correct-Horse-Battery-9";
    let r = web.post_form(&path, &[("csrf", &r.csrf()), ("password", chosen), ("confirm", chosen)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Your password is set"));
    let hash = env.db("SELECT password_hash FROM users WHERE username = 'jsmith'");
    assert!(argon2_ok(&hash, chosen), "the stored hash verifies the chosen password");
    assert!(!argon2_ok(&hash, first));
    assert_eq!(
        env.db("SELECT must_change_password FROM users WHERE username = 'jsmith'"),
        "0"
    );
    // Used: the link fails, GET and POST alike.
    let r = web.get(&path);
    assert_eq!(r.status, 410);
    assert!(r.text().contains("used already"), "{}", r.text());
    let r = web.post_form(&path, &[("csrf", "x"), ("password", chosen), ("confirm", chosen)]);
    assert_eq!(r.status, 410);

    // Expired (its expiry moved into the past in the journal).
    let old = env.link_of("akhan@example.org");
    env.journal("UPDATE activations SET expires = 1 WHERE user_key = 'akhan'");
    let r = web.get(&path_of(&env, &old));
    assert_eq!(r.status, 410);
    assert!(
        r.text().contains("expired") && r.text().contains("IT department"),
        "{}",
        r.text()
    );
    // Resent from the command line: a new mail; the old link is replaced.
    let (code, out, err) = env.cli(&["activation", "resend", "AKHAN"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("akhan@example.org"), "{out}");
    let links = env.links_of("akhan@example.org");
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(web.get(&path_of(&env, &old)).text().contains("replaced by a newer one"));
    let new = path_of(&env, links.iter().find(|l| **l != old).expect("a new link"));
    let form = web.get(&new);
    let r = web.post_form(
        &new,
        &[("csrf", &form.csrf()), ("password", chosen), ("confirm", chosen)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hash = env.db("SELECT password_hash FROM users WHERE username = 'akhan'");
    assert!(argon2_ok(&hash, chosen));
    // A used link is not resent.
    let (code, _, err) = env.cli(&["activation", "resend", "jsmith"], "");
    assert_eq!(code, 2);
    assert!(err.contains("set a password"), "{err}");

    // Two uses at once: one wins.
    let path = path_of(&env, &env.link_of("bnguyen@example.org"));
    let mut a = web::Client::new(env.port);
    let mut b = web::Client::new(env.port);
    let (ca, cb) = (a.get(&path).csrf(), b.get(&path).csrf());
    let (pa, pb) = (path.clone(), path.clone());
    let ta = std::thread::spawn(move || {
        a.post_form(
            &pa,
            &[
                ("csrf", &ca),
                ("password", "first of two passwords"),
                ("confirm", "first of two passwords"),
            ],
        )
        .status
    });
    let tb = std::thread::spawn(move || {
        b.post_form(
            &pb,
            &[
                ("csrf", &cb),
                ("password", "second of two passwords"),
                ("confirm", "second of two passwords"),
            ],
        )
        .status
    });
    let mut statuses = [ta.join().expect("thread"), tb.join().expect("thread")];
    statuses.sort();
    assert_eq!(statuses, [200, 410]);
    let hash = env.db("SELECT password_hash FROM users WHERE username = 'bnguyen'");
    assert!(argon2_ok(&hash, "first of two passwords") != argon2_ok(&hash, "second of two passwords"));

    // The run page lists the links; an operator resends one with its button.
    let mut op = web::Client::new(env.port);
    assert_eq!(op.login("alice", "correct horse battery").status, 303);
    let run = op.get("/runs/1");
    let text = run.text();
    assert!(text.contains("Activation links") && text.contains("mobrien"), "{text}");
    assert!(text.matches(">used<").count() >= 3, "{text}");
    let old = env.link_of("mobrien@example.org");
    let r = op.post_form(
        "/runs/1/activations/resend",
        &[("csrf", &run.csrf()), ("key", "mobrien")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let ok = wait_until(Duration::from_secs(30), || {
        env.links_of("mobrien@example.org").len() == 2
    });
    assert!(ok, "the resent mail was not delivered");
    assert_eq!(web.get(&path_of(&env, &old)).status, 410);
    let r = op.post_form("/runs/1/activations/resend", &[("csrf", "nope"), ("key", "mobrien")]);
    assert_eq!(r.status, 403);

    // No password reached the daemon's log.
    let log = daemon.log();
    for pw in [first, chosen, "first of two passwords", "second of two passwords"] {
        assert!(!log.contains(pw), "a password in the log");
    }
    assert!(log.contains("Account activated"), "{log}");
    assert!(
        !log.contains(token_of(&env.links_of("jsmith@example.org")[0])),
        "a token in the log"
    );
    // The API lists the run's links (never a token).
    let api = op.get("/api/v1/runs/1").json();
    let links = api["activations"].as_array().cloned().unwrap_or_default();
    assert!(
        links.iter().any(|l| l["key"] == "jsmith" && l["state"] == "used"),
        "{api}"
    );
    assert!(
        links.iter().any(|l| l["key"] == "mobrien" && l["state"] == "pending"),
        "{api}"
    );

    // Failed tries with one link are limited: the sixth waits.
    let path = path_of(&env, &env.link_of("plee@example.org"));
    let mut csrf = web.get(&path).csrf();
    for _ in 0..5 {
        let r = web.post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("password", "one long password"),
                ("confirm", "two long passwords"),
            ],
        );
        assert_eq!(r.status, 422, "{}", r.text());
        csrf = r.csrf();
    }
    let r = web.post_form(&path, &[("csrf", &csrf), ("password", chosen), ("confirm", chosen)]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        env.db("SELECT password_hash IS NULL FROM users WHERE username = 'plee'"),
        "1"
    );

    // Guessing links from one address is stopped.
    for i in 0..5 {
        assert_eq!(web.get(&format!("/activate/guess{i}")).status, 404);
    }
    let r = web.get("/activate/guess5");
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
}
