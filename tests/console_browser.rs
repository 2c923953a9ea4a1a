//! The web console in a real browser: Debian's chromium, driven through
//! chromedriver (WebDriver) with fantoccini. Log in, upload a file, see the
//! preview with "show only errors", apply, watch the run finish, open its
//! rows, approve a held run, download the results. A screenshot of each page
//! is saved under the test's temp dir (and under $DIRSYNC_SCREENSHOTS when
//! set); a failing step says which page and why.

#[path = "common/console_env.rs"]
mod console_env;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/web.rs"]
mod web;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use console_env::{roster, Env, BAD_ROW};
use fantoccini::{Client, ClientBuilder, Locator};
use serve::{free_port, wait_until};

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(log: &Path) -> Driver {
        let port = free_port();
        let log = std::fs::File::create(log).expect("chromedriver log"); // ok: test
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run chromedriver: install it with scripts/install-test-deps (Debian package chromium-driver)"); // ok: test
        let up = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "chromedriver did not listen on port {port}");
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser, the console's address, and where screenshots go.
struct Browser {
    c: Client,
    base: String,
    shots: Vec<PathBuf>,
}

impl Browser {
    async fn open(driver: &Driver, base: String, shots: Vec<PathBuf>) -> Browser {
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=en-GB"],
            }
        });
        let caps = caps.as_object().cloned().unwrap_or_default();
        // Both of rustls's providers are in the build: choose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let c = ClientBuilder::rustls()
            .expect("TLS roots") // ok: test
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("cannot start chromium through chromedriver: {e}"));
        Browser { c, base, shots }
    }

    /// Screenshot the page as `name.png` in every screenshot folder.
    async fn shot(&self, name: &str) {
        if let Ok(png) = self.c.screenshot().await {
            for dir in &self.shots {
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::write(dir.join(format!("{name}.png")), &png);
            }
        }
    }

    /// A step failed: screenshot, then say which page and why.
    async fn fail(&self, page: &str, why: String) -> ! {
        self.shot(&format!("failed-{page}")).await;
        let url = self.c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let text = self.text("main").await;
        panic!("page {page} ({url}): {why}\n--- page text ---\n{text}");
    }

    async fn go(&self, page: &str, path: &str) {
        if let Err(e) = self.c.goto(&format!("{}{path}", self.base)).await {
            self.fail(page, format!("cannot open {path}: {e}")).await;
        }
    }

    async fn click(&self, page: &str, id: &str) {
        let found = self
            .c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id(id))
            .await;
        match found {
            Ok(el) => {
                if let Err(e) = el.click().await {
                    self.fail(page, format!("cannot click #{id}: {e}")).await;
                }
            }
            Err(e) => self.fail(page, format!("no #{id}: {e}")).await,
        }
    }

    async fn type_into(&self, page: &str, id: &str, text: &str) {
        match self.c.find(Locator::Id(id)).await {
            Ok(el) => {
                if let Err(e) = el.send_keys(text).await {
                    self.fail(page, format!("cannot type into #{id}: {e}")).await;
                }
            }
            Err(e) => self.fail(page, format!("no #{id}: {e}")).await,
        }
    }

    async fn text(&self, css: &str) -> String {
        match self.c.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Wait until the element `#id` reads `want` (pages of running runs
    /// reload themselves).
    async fn wait_text(&self, page: &str, css: &str, want: &str) -> String {
        let id = css.trim_start_matches('#');
        let xpath = format!("//*[@id='{id}'][contains(normalize-space(.), '{want}')]");
        let found = self
            .c
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::XPath(&xpath))
            .await;
        match found {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(e) => {
                let last = self.text(css).await;
                self.fail(page, format!("{css} never read {want:?} (last: {last:?}): {e}"))
                    .await
            }
        }
    }

    /// Wait until the page shows `#id` (a click's navigation is not awaited).
    async fn wait_for(&self, page: &str, id: &str) {
        if let Err(e) = self
            .c
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Id(id))
            .await
        {
            self.fail(page, format!("#{id} never appeared: {e}")).await;
        }
    }

    async fn path(&self) -> String {
        self.c
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_uploads_checks_applies_and_approves_in_a_browser() {
    let env = Env::new("");
    let _daemon = env.serve();
    let driver = Driver::start(&env.dir.join("chromedriver.log"));
    let mut shots = vec![env.dir.join("screenshots")];
    if let Ok(d) = std::env::var("DIRSYNC_SCREENSHOTS") {
        shots.push(PathBuf::from(d));
    }
    let b = Browser::open(&driver, format!("http://127.0.0.1:{}", env.port), shots).await;

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
