//! The browser tests' parts, all real: the `sauve` binary running `sauve
//! run` on a temporary app, Debian's Chromium driven through its
//! ChromeDriver over WebDriver (headless, loopback only), and screenshots
//! under `target/browser/` for a reviewer to look at.

#![allow(clippy::panic)] // Test helpers: failing here fails the test that called them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// Where ChromeDriver and Chromium are (Debian's `chromium-driver` and
/// `chromium`; `cargo xtask test` installs them).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `sauve` binary of this build: `target/<profile>/sauve`, built by
/// `cargo nextest run --workspace` with the tests (and here if missing).
pub fn sauve_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary path: {e}"));
    // target/<profile>/deps/<test> → target/<profile>/sauve
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", exe.display()));
    let bin = profile_dir.join("sauve");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "sauve-cli", "--bin", "sauve"])
            .current_dir(crate::repo_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot build the sauve binary: {e}"));
        assert!(status.success(), "cargo build -p sauve-cli failed");
    }
    bin
}

/// `sauve run --app APP --listen 127.0.0.1:0`, in the UTC zone; stopped
/// with SIGTERM when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bearer token (which also logs in to the page).
    pub token: String,
    /// The app folder.
    pub app: PathBuf,
}

impl Server {
    /// Starts the server and waits for it to answer.
    pub fn start(app: &Path) -> Server {
        Server::start_with_env(app, &[])
    }

    /// [`Server::start`] with `env` added to the server's environment (a
    /// store's credentials, say).
    pub fn start_with_env(app: &Path, env: &[(&str, &str)]) -> Server {
        let log = std::fs::File::create(app.parent().unwrap_or(app).join("sauve-run.log"))
            .unwrap_or_else(|e| panic!("cannot create the server log: {e}"));
        let mut child = Command::new(sauve_binary())
            .args(["run", "--app"])
            .arg(app)
            .args(["--listen", "127.0.0.1:0"])
            .env("TZ", "UTC")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("cannot share the log: {e}")),
            )
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sauve run: {e}"));
        let pid = child.id();
        for _ in 0..300 {
            if let Some(f) = sauve_server::ServerFile::read(app)
                && f.pid == pid
            {
                return Server {
                    child,
                    url: f.url,
                    token: f.token,
                    app: app.to_path_buf(),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("sauve run exited early ({status}); see its log beside the app");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("sauve run did not write its server file within 15 s");
    }

    /// A page's URL.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium of its own (fresh profile), through a ChromeDriver
/// of its own.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl Browser {
    /// A browser whose window is `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver (`cargo xtask test` does)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver: {e}"));
        let profile = tempfile::Builder::new()
            .prefix("sauve-chromium-")
            .tempdir()
            .unwrap_or_else(|e| panic!("no profile folder: {e}"));
        let mut caps = serde_json::Map::new();
        let mut options = serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                ],
        });
        // A desktop window is at least 500 px wide: narrower is a phone's
        // screen, emulated.
        if width < 500 {
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true},
            });
        }
        caps.insert("goog:chromeOptions".to_owned(), options);
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            // Plain HTTP to the driver on loopback: no TLS.
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(caps.clone());
            match builder.connect(&webdriver).await {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver gave no session: {last:?}");
    }

    /// Logs in with the server's token and waits for the Backup page.
    pub async fn login(&self, server: &Server) {
        self.client
            .goto(&server.at("/login"))
            .await
            .unwrap_or_else(|e| panic!("cannot open the login page: {e}"));
        self.fill("#secret", &server.token).await;
        self.click("form[action='/login'] button").await;
        self.wait_text("h1", "Backup").await;
    }

    /// The element `css`, waiting for it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Replaces the text of the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear()
            .await
            .unwrap_or_else(|err| panic!("cannot clear {css}: {err}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("cannot type into {css}: {err}"));
    }

    /// The text of `css` (empty when it is not there).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Runs `script` (its `return` value comes back).
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `css` shows `needle` in its text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let t = self.text(css).await;
            if t.contains(needle) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never showed \"{needle}\" (it shows \"{t}\")"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` returns `true`.
    pub async fn wait_js(&self, script: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.js(script).await != serde_json::Value::Bool(true) {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `target/browser/NAME.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("no screenshot: {e}"));
        let dir = crate::repo_root().join("target/browser");
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Whether the page scrolls sideways at this width.
    pub async fn scrolls_sideways(&self) -> bool {
        self.js("return document.documentElement.scrollWidth > window.innerWidth;")
            .await
            == serde_json::Value::Bool(true)
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
