//! Issue 18, existing accounts: only a row flagged "Send invite" = 1
//! touches an existing account's password (a password column in a nightly
//! file resets nothing): a flagged row carrying a password sets it (and
//! mails it with `deliver = "mail"`), one without gets a generated password
//! or an activation link, as `[passwords] existing` says; each is a `reset`, held by its own safety
//! limit (`password_resets`) until approved. Checked on SQLite with
//! `sqlite3` and argon2, the mails read back from the `.eml` files.

#[path = "common/activation_env.rs"]
mod activation_env;
#[path = "common/mime.rs"]
#[allow(dead_code)] // the SMTP half is tests/mail.rs's
mod mime;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/web.rs"]
mod web;

use activation_env::{argon2_ok, path_of, roster, Env, HEADER};

/// Rows for existing accounts: (user, password cell, invite cell).
fn resets(rows: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut s = format!("{HEADER},Password,Send invite\n");
    for (u, pw, invite) in rows {
        s.push_str(&format!(
            "{u},First,Last,{u}@example.org,Clerk,Finance,HQ,Standard,,staff,,,{pw},{invite}\n"
        ));
    }
    s.into_bytes()
}

/// The passwords mailed to `to`, from the credentials mails' text.
fn mailed_passwords(env: &Env, to: &str) -> Vec<(String, String)> {
    env.mails()
        .into_iter()
        .filter(|(t, _, _)| t == to)
        .filter_map(|(_, _, body)| {
            let line = body.lines().find(|l| l.trim_start().starts_with("Password:"))?;
            let pw = line.trim_start().trim_start_matches("Password:").trim().to_string();
            Some((pw, body))
        })
        .collect()
}

fn hash(env: &Env, user: &str) -> String {
    env.db(&format!("SELECT password_hash FROM users WHERE username = '{user}'"))
}

#[test]
fn file_passwords_and_flagged_rows_reset_existing_accounts_within_their_limit() {
    let env = Env::new(|p| {
        p.replace("deliver = \"activation\"", "deliver = \"mail\"")
            .replace("existing = \"keep\"", "existing = \"generate\"")
            .replace(
                "password_resets = { max_percent = 10.0 }",
                "password_resets = { max = 1 }",
            )
    });
    let (code, out, err) = env.apply("first.csv", &roster(&["jsmith", "akhan", "bnguyen"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let (first, _) = mailed_passwords(&env, "jsmith@example.org").remove(0);
    assert!(argon2_ok(&hash(&env, "jsmith"), &first));
    let bnguyen = hash(&env, "bnguyen");

    // jsmith flagged, akhan flagged with a password in the file, bnguyen
    // with a password but not flagged: two resets, over their limit of
    // one: held, nothing written.
    let file = resets(&[
        ("jsmith", "", "1"),
        ("akhan", "File-Pass-123456", "1"),
        ("bnguyen", "Not-Flagged-12345", "0"),
    ]);
    let (code, out, err) = env.apply("resets.csv", &file);
    assert_eq!(code, 1, "{out}\n{err}");
    let results = std::fs::read_to_string(env.dir.join("resets.results.csv")).expect("results");
    assert_eq!(results.matches(",reset,held,").count(), 2, "{results}");
    assert!(results.contains("password_resets"), "{results}");
    assert!(argon2_ok(&hash(&env, "jsmith"), &first), "held: not reset");

    // Approved: exactly those two.
    let (code, out, err) = env.cli(
        &["runs", "approve", "2", "--class", "password_resets", "--by", "alice"],
        "",
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let jsmith = mailed_passwords(&env, "jsmith@example.org");
    assert_eq!(jsmith.len(), 2, "a second credentials mail");
    let (second, body) = jsmith.into_iter().find(|(p, _)| *p != first).expect("a new password");
    assert!(body.contains("has been reset"), "{body}");
    let h = hash(&env, "jsmith");
    assert!(argon2_ok(&h, &second) && !argon2_ok(&h, &first));
    assert!(argon2_ok(&hash(&env, "akhan"), "File-Pass-123456"));
    let akhan = mailed_passwords(&env, "akhan@example.org");
    assert!(
        akhan.iter().any(|(p, _)| p == "File-Pass-123456"),
        "mailed with deliver = mail"
    );
    assert_eq!(hash(&env, "bnguyen"), bnguyen, "an unflagged row keeps its password");
    let results = std::fs::read_to_string(env.dir.join("resets.results.csv")).expect("results");
    assert!(results.contains("password generated"), "{results}");
    assert!(
        results.contains("password from the file set and mailed to the user"),
        "{results}"
    );
    assert!(!results.contains("File-Pass-123456"), "never in the results");
    assert!(
        results.contains("bnguyen") && results.contains(",unchanged,"),
        "{results}"
    );
}

#[test]
fn a_flagged_existing_account_gets_an_activation_link_and_keeps_its_password_until_used() {
    let env = Env::new(|p| {
        p.replace("deliver = \"activation\"", "deliver = \"mail\"")
            .replace("existing = \"keep\"", "existing = \"activation\"")
            .replace(
                "password_resets = { max_percent = 10.0 }",
                "password_resets = { max = 10 }",
            )
    });
    let (code, out, err) = env.apply("first.csv", &roster(&["jsmith"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let (first, _) = mailed_passwords(&env, "jsmith@example.org").remove(0);
    let (code, out, err) = env.apply("invite.csv", &resets(&[("jsmith", "", "yes")]));
    assert_eq!(code, 0, "{out}\n{err}");
    let results = std::fs::read_to_string(env.dir.join("invite.results.csv")).expect("results");
    assert!(
        results.contains(",reset,done,") && results.contains("activation mailed"),
        "{results}"
    );
    assert!(
        argon2_ok(&hash(&env, "jsmith"), &first),
        "the old password works until the link is used"
    );
    let mails = env.mails();
    let invite = mails
        .iter()
        .find(|(t, s, _)| t == "jsmith@example.org" && s.contains("choose your password"))
        .expect("an activation mail");
    assert!(invite.2.contains("choose a new password"), "{}", invite.2);

    let _daemon = env.serve();
    let mut web = web::Client::new(env.port);
    let path = path_of(&env, &env.link_of("jsmith@example.org"));
    let form = web.get(&path);
    let chosen = "Correct-Horse-Battery-9";
    let r = web.post_form(
        &path,
        &[("csrf", &form.csrf()), ("password", chosen), ("confirm", chosen)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let h = hash(&env, "jsmith");
    assert!(argon2_ok(&h, chosen) && !argon2_ok(&h, &first));
}
