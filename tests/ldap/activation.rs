//! Issue 18 (activation mails) on the LDAP matrix: a new account is created
//! without a usable password (no userPassword; on AD disabled), its user
//! gets a one-time link (read back from the `.eml` the file transport
//! wrote), opens `/activate/TOKEN` on the console of a real `dirsync serve`
//! and sets a password there; a password the server's own policy refuses is
//! shown in plain words; the chosen one binds (`ldapwhoami`, an independent
//! client); the link then fails. A row flagged "send invite" with a
//! password resets an existing account's (an unflagged one does not).

use super::env::{values, Env, Kind};
use super::serve::{self, free_port};
use super::web;
use super::{kind, JANE};

/// Every activation link in the `.eml` files of `folder`.
fn links(folder: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let raw = std::fs::read(e.path()).expect("read mail");
        let m = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("a MIME message");
        let body = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
        out.extend(
            body.split_whitespace()
                .filter(|w| w.contains("/activate/"))
                .map(str::to_string),
        );
    }
    out
}

/// The server refuses passwords shorter than 14 characters (dirsync's own
/// `min_length` is 8): a 10-character password passes dirsync, not the server.
fn require_14(env: &Env) {
    match env.kind {
        Kind::OpenLdap => env.ldapmodify(&format!(
            "dn: {}\nchangetype: modify\nreplace: pwdMinLength\npwdMinLength: 14\n-\nreplace: pwdCheckQuality\npwdCheckQuality: 2\n",
            crate::servers::Slapd::POLICY_DN
        )),
        Kind::SambaAd => env.ldapmodify(&format!(
            "dn: {}\nchangetype: modify\nreplace: minPwdLength\nminPwdLength: 14\n",
            crate::directories::SambaAd::BASE
        )),
        Kind::Ds389 => env.ldapmodify(
            "dn: cn=config\nchangetype: modify\nreplace: passwordCheckSyntax\npasswordCheckSyntax: on\n-\n\
             replace: passwordMinLength\npasswordMinLength: 14\n",
        ),
    }
}

matrix!(an_activation_link_sets_a_password_the_directory_accepts);
fn an_activation_link_sets_a_password_the_directory_accepts(kind: Kind) {
    let env = Env::start(kind, "ignore", "");
    env.edit_policy(|p| {
        p.replace(
            "[passwords]\n",
            "[passwords]\ndeliver = \"activation\"\nmin_length = 8\n",
        )
    });
    let port = free_port();
    let mut config = std::fs::read_to_string(env.path("dirsync.toml")).expect("config");
    config.push_str(&format!(
        "\n[mail]\nfrom = \"dirsync <dirsync@example.org>\"\ntransport = \"file\"\nfolder = \"mail\"\n\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n"
    ));
    std::fs::write(env.path("dirsync.toml"), config).expect("config");

    let run = env.apply(&[JANE]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.results);
    assert!(run.results.contains("activation mailed"), "{}", run.results);
    let dn = env.user_dn("jsmith", "Finance");
    let entry = env.user("jsmith", &["userPassword", "mail"]);
    assert!(values(&entry, "userPassword").is_empty(), "no password yet: {entry}");
    if env.ad() {
        assert!(env.is_locked("jsmith"), "AD keeps it disabled until a password is set");
    }
    // The next night's file, before the user has activated: nothing to do
    // (on AD the disabled account is waiting for its password, not a leaver).
    let again = env.apply(&[JANE]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.results);
    assert!(again.results.contains(",unchanged,"), "{}", again.results);
    let found = links(&env.path("mail"));
    assert_eq!(found.len(), 1, "{found:?}");
    let base = format!("http://127.0.0.1:{port}");
    let path = found[0].strip_prefix(&base).expect("a link to the console").to_string();

    let _daemon = serve::start_serve(&env.path("."), "Web console listening");
    require_14(&env);
    let mut web = web::Client::new(port);
    let form = web.get(&path);
    assert_eq!(form.status, 200, "{}", form.text());
    let weak = "Short-pw-1";
    let r = web.post_form(&path, &[("csrf", &form.csrf()), ("password", weak), ("confirm", weak)]);
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    assert!(text.contains("password policy refused it"), "{text}");
    assert!(
        !text.contains("LDAP") && !text.contains("constraintViolation") && !text.contains(weak),
        "{text}"
    );
    assert!(env.bind_check(&dn, weak).is_err());

    let chosen = "Correct-Horse-Battery-9";
    let r = web.post_form(&path, &[("csrf", &r.csrf()), ("password", chosen), ("confirm", chosen)]);
    assert_eq!(r.status, 200, "{}", r.text());
    env.bind_check(&dn, chosen).expect("the chosen password binds");
    assert!(!env.is_locked("jsmith"), "enabled once its password is set");
    assert_eq!(web.get(&path).status, 410, "the link works once");
}

matrix!(a_flagged_row_resets_an_existing_password);
fn a_flagged_row_resets_an_existing_password(kind: Kind) {
    let env = Env::start(kind, "ignore", "");
    env.edit_policy(|p| {
        p.replace("[limits]\n", "[limits]\npassword_resets = { max = 10 }\n")
            // AD refuses a bind that must change its password first.
            .replace("[passwords]\n", "[passwords]\nmust_change_new = false\n")
    });
    let header = format!("{},password,send invite", super::env::HEADER);
    let first = "First-Pass-12345";
    let f = env.csv_with(&header, &[&format!("{JANE},{first},")]);
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.results);
    let dn = env.user_dn("jsmith", "Finance");
    env.bind_check(&dn, first).expect("created with the file's password");

    // The same password column, not flagged: nothing changes.
    let other = "Other-Pass-67890";
    let f = env.csv_with(&header, &[&format!("{JANE},{other},0")]);
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.results);
    assert!(run.results.contains(",unchanged,"), "{}", run.results);
    env.bind_check(&dn, first).expect("an unflagged row resets nothing");

    // Flagged: the row's password is set.
    let f = env.csv_with(&header, &[&format!("{JANE},{other},1")]);
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.results);
    assert!(run.results.contains(",reset,done,"), "{}", run.results);
    env.bind_check(&dn, other).expect("the new password binds");
    assert!(env.bind_check(&dn, first).is_err(), "the old one no longer does");
}
