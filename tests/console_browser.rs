//! The web console in a real browser: Debian's chromium, driven through
//! chromedriver (WebDriver) with fantoccini. Log in, upload a file, see the
//! preview with "show only errors", apply, watch the run finish, open its
//! rows, approve a held run, download the results. A screenshot of each page
//! is saved under the test's temp dir (and under $DIRSYNC_SCREENSHOTS when
//! set); a failing step says which page and why.

#[path = "common/browser.rs"]
mod browser;
#[path = "common/console_env.rs"]
mod console_env;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/web.rs"]
mod web;

use browser::{Browser, Driver};
use console_env::{roster, Env, BAD_ROW};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_uploads_checks_applies_and_approves_in_a_browser() {
    let env = Env::new("");
    let _daemon = env.serve();
    let driver = Driver::start(&env.dir.join("chromedriver.log"));
    let b = Browser::open(
        &driver,
        format!("http://127.0.0.1:{}", env.port),
        browser::shot_dirs(&env.dir),
    )
    .await;

    // Log in.
    b.go("login", "/runs").await;
    b.shot("login").await;
    b.type_into("login", "user", "alice").await;
    b.type_into("login", "password", "correct horse battery").await;
    b.click("login", "login").await;
    b.wait_for("login", "runs").await;
    if b.path().await != "/runs" {
        b.fail("login", "the login did not lead back to /runs".into()).await;
    }

    // Upload and check: the preview, then only its errors.
    let file = env.dir.join("joiners.csv");
    std::fs::write(&file, roster(12, "Clerk", Some(BAD_ROW))).expect("write"); // ok: test
    b.go("upload", "/upload").await;
    b.shot("upload").await;
    b.type_into("upload", "file", &file.to_string_lossy()).await;
    b.click("upload", "check").await;
    b.wait_text("preview", "#summary", "12 new, 1 error").await;
    b.shot("preview").await;
    b.click("preview", "only-errors").await;
    b.click("preview", "filter-rows").await;
    let rows = b.wait_text("preview", "#row-count", "1 row(s) listed").await;
    let table = b.text("#rows").await;
    if !table.contains("tbroken") || table.contains("user004") {
        b.fail(
            "preview",
            format!("show only errors lists other rows ({rows}): {table}"),
        )
        .await;
    }
    b.shot("preview-errors").await;
    assert_eq!(env.db("SELECT COUNT(*) FROM users"), "0", "the preview wrote");

    // Apply, and watch the run finish.
    b.click("preview", "apply").await;
    b.wait_text("run", "#run-state", "done").await;
    b.wait_text("run", "#summary", "12 new, 1 error (12 done, 1 skipped)")
        .await;
    b.shot("run").await;
    assert_eq!(env.db("SELECT COUNT(*) FROM users"), "12");
    let run_path = b.path().await;

    // Its rows, searched by key.
    b.type_into("run", "key", "user007").await;
    b.click("run", "filter-rows").await;
    b.wait_text("run", "#row-count", "1 row(s) listed").await;
    let rows = b.text("#rows").await;
    if !rows.contains("user007") || rows.contains("user006") {
        b.fail("run", format!("the key search shows other rows: {rows}")).await;
    }

    // A held run: every title changes (updates are limited to 50 %).
    let held = env.drop_file("promotions.csv", &roster(12, "Accountant", None));
    b.go("dashboard", "/").await;
    b.shot("dashboard").await;
    b.go("approve", &format!("/runs/{held}/approve")).await;
    let list = b.text("#held").await;
    if !list.contains("Accountant") || !list.contains("user011") {
        b.fail("approve", format!("the held changes are not shown: {list}"))
            .await;
    }
    b.shot("approve").await;
    b.click("approve", "approve").await;
    b.wait_text("approved run", "#run-state", "done").await;
    b.shot("approved").await;
    assert_eq!(env.db("SELECT COUNT(*) FROM users WHERE title = 'Accountant'"), "12");
    assert_eq!(
        env.journal(&format!("SELECT by_name FROM run_approvals WHERE run_id = {held}")),
        "alice"
    );

    // Download the results with the browser's session.
    b.go("run", &run_path).await;
    let href = match b.c.find(Locator::Id("download-results")).await {
        Ok(a) => a.attr("href").await.ok().flatten().unwrap_or_default(),
        Err(e) => b.fail("run", format!("no results link: {e}")).await,
    };
    let mut web = env.client();
    for c in b.c.get_all_cookies().await.unwrap_or_default() {
        web.cookies.insert(c.name().to_string(), c.value().to_string());
    }
    let csv = web.get(&href);
    assert_eq!(csv.status, 200, "{href}");
    assert!(
        csv.text().contains("user011") && csv.text().contains("tbroken"),
        "{}",
        csv.text()
    );
    let _ = b.c.close().await;
}
