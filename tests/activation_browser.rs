//! Issue 18 in a real browser (chromium through chromedriver): a new user
//! opens the activation link from their mail (the `.eml` the file transport
//! wrote), types two passwords that differ and is told so, then sets one;
//! argon2 verifies the hash `sqlite3` reads; the link then says it was
//! used, and an expired link says to ask IT. Screenshots of each page go to
//! the test's temp dir (and $DIRSYNC_SCREENSHOTS when set).

#[path = "common/activation_env.rs"]
mod activation_env;
#[path = "common/browser.rs"]
mod browser;
#[path = "common/mime.rs"]
#[allow(dead_code)] // the SMTP half is tests/mail.rs's
mod mime;
#[path = "common/serve.rs"]
mod serve;

use activation_env::{argon2_ok, path_of, roster, Env};
use browser::{Browser, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_sets_their_password_from_the_mailed_link_in_a_browser() {
    let env = Env::new(|p| p);
    let (code, out, err) = env.apply("hr.csv", &roster(&["jsmith", "akhan"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let _daemon = env.serve();
    let driver = Driver::start(&env.dir.join("chromedriver.log"));
    let b = Browser::open(
        &driver,
        format!("http://127.0.0.1:{}", env.port),
        browser::shot_dirs(&env.dir),
    )
    .await;

    let path = path_of(&env, &env.link_of("jsmith@example.org"));
    b.go("activate", &path).await;
    b.wait_text("activate", "#activate-user", "jsmith").await;
    b.shot("activate").await;
    b.type_into("activate", "password", "a long enough password").await;
    b.type_into("activate", "confirm", "another long password").await;
    b.click("activate", "set-password").await;
    b.wait_text("activate", "#activate-error", "not the same").await;
    b.shot("activate-mismatch").await;
    let chosen = "Correct-Horse-Battery-9";
    b.type_into("activate", "password", chosen).await;
    b.type_into("activate", "confirm", chosen).await;
    b.click("activate", "set-password").await;
    b.wait_text("activated", "#activate-message", "Your password is set")
        .await;
    b.shot("activated").await;
    let hash = env.db("SELECT password_hash FROM users WHERE username = 'jsmith'");
    assert!(argon2_ok(&hash, chosen), "the stored hash verifies the chosen password");

    // The link works once.
    b.go("used", &path).await;
    b.wait_text("used", "#activate-message", "used already").await;
    b.shot("activate-used").await;

    // An expired link (its expiry moved into the past) says to ask IT.
    let expired = path_of(&env, &env.link_of("akhan@example.org"));
    env.journal("UPDATE activations SET expires = 1 WHERE user_key = 'akhan'");
    b.go("expired", &expired).await;
    b.wait_text("expired", "#activate-message", "Ask your IT department")
        .await;
    b.shot("activate-expired").await;
    assert_eq!(
        env.db("SELECT password_hash IS NULL FROM users WHERE username = 'akhan'"),
        "1"
    );
    let _ = b.c.close().await;
}
