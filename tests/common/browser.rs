//! A real browser for the console tests: Debian's chromium, driven through
//! chromedriver (WebDriver) with fantoccini; each step that fails takes a
//! screenshot and says which page and why. Shared by
//! tests/console_browser.rs and tests/activation_browser.rs.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::serve::{free_port, wait_until};

/// chromedriver on a free port; killed when dropped.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start(log: &Path) -> Driver {
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
pub struct Browser {
    pub c: Client,
    base: String,
    shots: Vec<PathBuf>,
}

/// Where a test's screenshots go: `DIR/screenshots`, and `$DIRSYNC_SCREENSHOTS` when set.
pub fn shot_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut shots = vec![dir.join("screenshots")];
    if let Ok(d) = std::env::var("DIRSYNC_SCREENSHOTS") {
        shots.push(PathBuf::from(d));
    }
    shots
}

impl Browser {
    pub async fn open(driver: &Driver, base: String, shots: Vec<PathBuf>) -> Browser {
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
    pub async fn shot(&self, name: &str) {
        if let Ok(png) = self.c.screenshot().await {
            for dir in &self.shots {
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::write(dir.join(format!("{name}.png")), &png);
            }
        }
    }

    /// A step failed: screenshot, then say which page and why.
    pub async fn fail(&self, page: &str, why: String) -> ! {
        self.shot(&format!("failed-{page}")).await;
        let url = self.c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let text = self.text("main").await;
        panic!("page {page} ({url}): {why}\n--- page text ---\n{text}");
    }

    pub async fn go(&self, page: &str, path: &str) {
        if let Err(e) = self.c.goto(&format!("{}{path}", self.base)).await {
            self.fail(page, format!("cannot open {path}: {e}")).await;
        }
    }

    pub async fn click(&self, page: &str, id: &str) {
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

    pub async fn type_into(&self, page: &str, id: &str, text: &str) {
        match self.c.find(Locator::Id(id)).await {
            Ok(el) => {
                if let Err(e) = el.send_keys(text).await {
                    self.fail(page, format!("cannot type into #{id}: {e}")).await;
                }
            }
            Err(e) => self.fail(page, format!("no #{id}: {e}")).await,
        }
    }

    pub async fn text(&self, css: &str) -> String {
        match self.c.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Wait until the element `#id` reads `want` (pages of running runs
    /// reload themselves).
    pub async fn wait_text(&self, page: &str, css: &str, want: &str) -> String {
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
    pub async fn wait_for(&self, page: &str, id: &str) {
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

    pub async fn path(&self) -> String {
        self.c
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }
}
