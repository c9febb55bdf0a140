//! A small W3C WebDriver client (the few commands the console test needs) over reqwest, and a
//! driver process on loopback: `chromedriver` driving a headless Chromium, or `geckodriver`
//! driving a headless Firefox. Small enough to read in one go, and no dependency beyond what the
//! workspace already has.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// An executable on `PATH` (or the first of `names` found there).
pub(crate) fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A browser the console test drives, with the programs it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Browser {
    /// Chromium through `chromedriver` (Debian: `chromium`, `chromium-driver`).
    Chromium,
    /// Firefox through `geckodriver` (Debian: `firefox-esr`; crates.io: `geckodriver`).
    Firefox,
}

impl Browser {
    /// The browser's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "Chromium",
            Browser::Firefox => "Firefox",
        }
    }

    /// The browser and its WebDriver server on `PATH`, or why they are missing.
    pub(crate) fn find(self) -> Result<(PathBuf, PathBuf), &'static str> {
        let (browser, driver, missing) = match self {
            Browser::Chromium => (
                find_program(&["chromium", "chromium-browser", "google-chrome"]),
                find_program(&["chromedriver", "chromium-driver"]),
                "chromium and chromedriver are not on PATH (Debian: apt-get install chromium chromium-driver)",
            ),
            Browser::Firefox => (
                find_program(&["firefox-esr", "firefox"]),
                find_program(&["geckodriver"]),
                "firefox and geckodriver are not on PATH (Debian: apt-get install firefox-esr; cargo install geckodriver)",
            ),
        };
        browser.zip(driver).ok_or(missing)
    }
}

/// A running `chromedriver` or `geckodriver`, killed on drop.
#[derive(Debug)]
pub(crate) struct Driver {
    child: Child,
    url: String,
    browser: Browser,
}

impl Driver {
    /// Starts the browser's WebDriver server (`driver`) on a free loopback port and waits until
    /// it is ready.
    pub(crate) async fn start(browser: Browser, driver: &Path) -> Driver {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(driver);
        match browser {
            Browser::Chromium => command
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1"),
            Browser::Firefox => command
                .args(["--host", "127.0.0.1", "--port"])
                .arg(port.to_string()),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", driver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            browser,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = reqwest::get(format!("{}/status", driver.url))
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(response) = ready {
                let status: Value =
                    serde_json::from_slice(&response.bytes().await.unwrap_or_default())
                        .unwrap_or_default();
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the {} WebDriver server did not become ready",
                browser.name()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A headless browser session (`binary`, with its profile in `profile`) with a window of
    /// `width` × `height`.
    pub(crate) async fn session(
        &self,
        binary: &Path,
        profile: &Path,
        width: u32,
        height: u32,
    ) -> Session {
        let capabilities = match self.browser {
            Browser::Chromium => json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {
                            "binary": binary,
                            "args": [
                                "--headless=new",
                                // Root in a container has no user namespaces for the sandbox.
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-dev-shm-usage",
                                "--no-first-run",
                                "--hide-scrollbars",
                                format!("--user-data-dir={}", profile.display()),
                                format!("--window-size={width},{height}"),
                            ],
                        },
                    },
                },
            }),
            Browser::Firefox => json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "firefox",
                        "moz:firefoxOptions": {
                            "binary": binary,
                            "args": ["-headless", "-profile", profile],
                        },
                    },
                },
            }),
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let answer = call(
            &client,
            reqwest::Method::POST,
            &format!("{}/session", self.url),
            Some(capabilities),
        )
        .await;
        let id = answer["sessionId"]
            .as_str()
            .expect("a WebDriver session id")
            .to_owned();
        let session = Session {
            client,
            base: format!("{}/session/{id}", self.url),
        };
        if self.browser == Browser::Firefox {
            // Firefox takes no window size argument in its capabilities.
            session
                .post("/window/rect", json!({ "width": width, "height": height }))
                .await;
        }
        session
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; panics with the driver's message on an error.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method.clone(), url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "{method} {url}: HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    value["value"].clone()
}

/// A browser session, deleted by [`Session::close`].
#[derive(Debug)]
pub(crate) struct Session {
    client: reqwest::Client,
    base: String,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub(crate) struct Element(String);

impl Session {
    async fn post(&self, path: &str, body: Value) -> Value {
        call(
            &self.client,
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        call(
            &self.client,
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            None,
        )
        .await
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The elements matching a CSS selector, now.
    pub(crate) async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|id| Element(id.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for the first element matching `css`.
    pub(crate) async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the rendered text of the first element matching `css` contains `needle`;
    /// returns that text.
    pub(crate) async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                last = self.text(&element).await;
                if last.contains(needle) {
                    return last;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?} in {css}; it shows:\n{last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element's rendered text.
    pub(crate) async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the element (as a user would: it must be visible and enabled).
    pub(crate) async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Types `text` into the element.
    pub(crate) async fn type_text(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// Runs a script in the page and returns its result.
    pub(crate) async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }

    /// Ends the session (closes the browser).
    pub(crate) async fn close(self) {
        let _ = self.client.delete(&self.base).send().await;
    }
}
