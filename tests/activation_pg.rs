//! Issue 18 on PostgreSQL: the target, the journal (as daemons sharing work
//! use it: the tokens are in the shared journal) and the outbox all in one
//! real PostgreSQL server. A new user's activation link, read back from the
//! `.eml`, sets a password through the console; `psql` reads the hash and
//! argon2 verifies it; the link then fails; a resend voids the old one.

#[path = "common/activation_env.rs"]
mod activation_env;
#[path = "common/mime.rs"]
#[allow(dead_code)] // the SMTP half is tests/mail.rs's
mod mime;
#[path = "common/serve.rs"]
mod serve;
#[path = "support/servers.rs"]
mod servers;
#[path = "common/web.rs"]
mod web;

use activation_env::{argon2_ok, path_of, roster, sha256_hex, token_of, Env};

#[test]
fn activation_with_postgresql_as_target_journal_and_outbox() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}"));
    let q = |sql: &str| {
        pg.psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
            .trim()
            .to_string()
    };
    let env = Env::with(
        &format!("journal = \"{}\"\n", pg.url()),
        &format!("url = \"{}\"", pg.url()),
        |p| p,
    );
    let config = std::fs::read_to_string(env.dir.join("dirsync.toml")).expect("config");
    let config = config.replace(
        "folder = \"mail\"\n",
        &format!("folder = \"mail\"\noutbox = \"{}\"\n", pg.url()),
    );
    std::fs::write(env.dir.join("dirsync.toml"), config).expect("config");
    let (code, out, err) = env.apply("hr.csv", &roster(&["jsmith", "akhan"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        q("SELECT username || '|' || (password_hash IS NULL) FROM users ORDER BY 1"),
        "akhan|true\njsmith|true"
    );
    let link = env.link_of("jsmith@example.org");
    assert_eq!(
        q("SELECT token_hash FROM activations WHERE user_key = 'jsmith'"),
        sha256_hex(token_of(&link))
    );
    assert!(
        !std::path::Path::new(&env.dir.join("state/journal.db")).exists(),
        "the journal and the outbox are PostgreSQL's"
    );

    let _daemon = env.serve();
    let mut web = web::Client::new(env.port);
    let path = path_of(&env, &link);
    let form = web.get(&path);
    assert_eq!(form.status, 200, "{}", form.text());
    let chosen = "Correct-Horse-Battery-9";
    let r = web.post_form(
        &path,
        &[("csrf", &form.csrf()), ("password", chosen), ("confirm", chosen)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hash = q("SELECT password_hash FROM users WHERE username = 'jsmith'");
    assert!(argon2_ok(&hash, chosen), "the stored hash verifies the chosen password");
    assert_eq!(web.get(&path).status, 410, "the link works once");
    assert_eq!(
        q("SELECT COUNT(*) FROM activations WHERE user_key = 'jsmith' AND used_at IS NOT NULL"),
        "1"
    );

    // A resend (the journal and the outbox in PostgreSQL) voids the old link.
    let old = env.link_of("akhan@example.org");
    let (code, out, err) = env.cli(&["activation", "resend", "akhan"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    let links = env.links_of("akhan@example.org");
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(web.get(&path_of(&env, &old)).status, 410);
    let new = links.iter().find(|l| **l != old).expect("a new link");
    assert_eq!(web.get(&path_of(&env, new)).status, 200);
}
