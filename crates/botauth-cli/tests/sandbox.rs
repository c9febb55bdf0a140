//! `botauth sandbox` run as a user would: over https with its local CA, with the app, secrets,
//! certificates and registration file given on the command line, and stopped by a signal.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, run, text};

/// A certificate or key from the repository's `fixtures/certs`.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/certs"))
        .join(name)
}

/// A running `botauth sandbox` and the variables it printed.
struct Running {
    child: Child,
    env: Vec<(String, String)>,
    comments: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn var(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} not printed: {:?}", self.env))
    }

    /// The printed variables, without those in `drop`, plus `extra`.
    fn env_with(&self, drop: &[&str], extra: &[(&str, &str)]) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .cloned()
            .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    }
}

/// Starts `botauth sandbox args…` and reads its output up to the managed identity lines.
fn sandbox(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .arg("sandbox")
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start botauth sandbox");
    let stdout = child.stdout.take().expect("its stdout");
    let mut env = Vec::new();
    let mut comments = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of output");
        if let Some(rest) = line.strip_prefix("export ") {
            let (k, v) = rest.split_once('=').expect("export KEY=VALUE");
            env.push((k.to_owned(), v.trim_matches('\'').to_owned()));
        } else {
            let done = line.contains("Service Fabric:");
            comments.push(line);
            if done {
                break;
            }
        }
    }
    Running {
        child,
        env,
        comments,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sandbox_is_trusted_through_the_printed_ca_variables() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let running = sandbox(&["--tls", "--state-dir", state_dir]);
    let ca = state.path().join("ca").join("ca.pem");
    for key in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"] {
        assert_eq!(running.var(key), ca.to_str().unwrap());
    }
    assert!(
        running
            .var("BOTAUTH_AUTHORITY_HOST")
            .starts_with("https://127.0.0.1:")
    );
    assert!(
        running
            .var("BOTAUTH_METADATA_URL")
            .starts_with("https://127.0.0.1:")
    );
    assert!(
        running
            .var("BOTAUTH_ALLOWED_SERVICE_URLS")
            .starts_with("https://127.0.0.1:")
    );

    let out = run(&["token"], running.env.clone()).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["credential"], "client_secret");

    // Without the CA the https authority is not trusted: the exact failure is a TLS one.
    let out = run(&["token"], running.env_with(&["SSL_CERT_FILE"], &[])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("certificate verify failed"),
        "{}",
        text(&out.stderr)
    );

    // A restart reuses the CA: clients configured once keep working.
    let pem = std::fs::read(&ca).unwrap();
    drop(running);
    let again = sandbox(&["--tls", "--state-dir", state_dir]);
    assert_eq!(std::fs::read(&ca).unwrap(), pem);
    let out = run(&["token"], again.env.clone()).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

/// The answer (status line, headers, body) to `GET url` over https, trusting the CA in `ca`.
fn https_get(url: &str, ca: &str) -> String {
    use openssl::ssl::{SslConnector, SslMethod};
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("https://").expect("an https URL");
    let (authority, path) = rest.split_once('/').expect("a path");
    let (host, _) = authority.rsplit_once(':').expect("a port");
    let mut connector = SslConnector::builder(SslMethod::tls()).expect("an OpenSSL context");
    connector.set_ca_file(ca).expect("the printed CA file");
    let tcp = std::net::TcpStream::connect(authority).expect("the sandbox listens");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let mut tls = connector
        .build()
        .connect(host, tcp)
        .expect("a TLS session trusting the printed CA");
    write!(
        tls,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut answer = Vec::new();
    // The server may close without close_notify: what was read is the answer.
    let _ = tls.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The vault's URL is printed as a comment (exported, BOTAUTH_KEY_VAULT_URL would switch the
/// printed secret setup to a Key Vault certificate), and Azure SDKs reach it over https.
#[test]
fn the_key_vault_url_is_printed_and_served_over_https() {
    let state = tempfile::tempdir().unwrap();
    let running = sandbox(&["--tls", "--state-dir", state.path().to_str().unwrap()]);
    let authority = running.var("BOTAUTH_AUTHORITY_HOST");
    let vault = running
        .comments
        .iter()
        .find_map(|c| c.strip_prefix("# Key Vault: BOTAUTH_KEY_VAULT_URL='"))
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no Key Vault line: {:?}", running.comments))
        .to_owned();
    // The vault is at the root of the sandbox's origin, as a real vault is.
    assert_eq!(vault, authority.trim_end_matches('/'));
    assert!(
        !running
            .env
            .iter()
            .any(|(k, _)| k.starts_with("BOTAUTH_KEY_VAULT")),
        "{:?}",
        running.env
    );
    let answer = https_get(
        &format!("{vault}/certificates/bot?api-version=7.6"),
        running.var("SSL_CERT_FILE"),
    );
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    let challenge = answer
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
        })
        .map(|(_, v)| v.trim().to_owned());
    assert_eq!(
        challenge.as_deref(),
        Some(
            format!(
                "Bearer authorization=\"{authority}/{}\", resource=\"https://vault.azure.net\"",
                botauth_sandbox::DEMO_TENANT_ID
            )
            .as_str()
        ),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_id_tenant_and_secrets_given_are_the_registration() {
    let running = sandbox(&[
        "--app-id",
        "6b1c7e6e-1111-4000-8000-0000000000aa",
        "--tenant-id",
        "contoso.example",
        "--secret",
        "first~secret",
        "--secret",
        "second~secret",
    ]);
    assert_eq!(
        running.var("CLIENT_ID"),
        "6b1c7e6e-1111-4000-8000-0000000000aa"
    );
    assert_eq!(running.var("TENANT_ID"), "contoso.example");
    assert_eq!(running.var("CLIENT_SECRET"), "first~secret");
    for secret in ["first~secret", "second~secret"] {
        let out = run(
            &["token"],
            running.env_with(&["CLIENT_SECRET"], &[("CLIENT_SECRET", secret)]),
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["client_id"], "6b1c7e6e-1111-4000-8000-0000000000aa");
    }
    // The demo app and its secret are not registered beside it.
    let out = run(
        &["token"],
        running.env_with(
            &["CLIENT_SECRET"],
            &[("CLIENT_SECRET", botauth_sandbox::DEMO_CLIENT_SECRET)],
        ),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("AADSTS7000215"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_given_on_the_command_line_is_accepted_for_assertions() {
    let dir = tempfile::tempdir().unwrap();
    let cert = fixture("rsa2048.pem");
    let key = fixture("rsa2048.key");
    let state_dir = dir.path().join("state");
    let running = sandbox(&[
        "--tls",
        "--state-dir",
        state_dir.to_str().unwrap(),
        "--certificate",
        cert.to_str().unwrap(),
    ]);
    // No secret is registered (none given): none printed.
    assert!(!running.env.iter().any(|(k, _)| k == "CLIENT_SECRET"));
    let der = openssl::x509::X509::from_pem(&std::fs::read(&cert).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let sha1: String = openssl::sha::sha1(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(
        running.comments.iter().any(|c| c.contains(&sha1)),
        "{:?}",
        running.comments
    );
    let settings = |k: &str| format!("Connections__ServiceConnection__Settings__{k}");
    let env = vec![
        (
            "SSL_CERT_FILE".to_owned(),
            running.var("SSL_CERT_FILE").to_owned(),
        ),
        (
            "BOTAUTH_AUTHORITY_HOST".to_owned(),
            running.var("BOTAUTH_AUTHORITY_HOST").to_owned(),
        ),
        (settings("AuthType"), "Certificate".to_owned()),
        (settings("ClientId"), running.var("CLIENT_ID").to_owned()),
        (settings("TenantId"), running.var("TENANT_ID").to_owned()),
        (settings("CertPemFile"), cert.display().to_string()),
        (settings("CertKeyFile"), key.display().to_string()),
    ];
    let out = run(&["token"], env.clone()).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["credential"], "certificate");

    // Another certificate's key is not registered: AADSTS700027.
    let other_cert = fixture("other2048.pem");
    let other_key = fixture("other2048.key");
    let mut env = env;
    env.retain(|(k, _)| !k.ends_with("CertPemFile") && !k.ends_with("CertKeyFile"));
    env.push((settings("CertPemFile"), other_cert.display().to_string()));
    env.push((settings("CertKeyFile"), other_key.display().to_string()));
    let out = run(&["token"], env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("AADSTS700027"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_registrations_exit_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = fixture("rsa2048.key");
    let bad_toml = dir.path().join("sandbox.toml");
    std::fs::write(
        &bad_toml,
        "[[app]]\nclient_id = \"a\"\nsecret = \"hunter2~x\"\n",
    )
    .unwrap();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--certificate".into(), key.display().to_string()],
            format!(
                "--certificate: {} is not an X.509 certificate",
                key.display()
            ),
        ),
        (
            vec![
                "--certificate".into(),
                dir.path().join("missing.pem").display().to_string(),
            ],
            "missing.pem: No such file or directory".to_owned(),
        ),
        (
            vec!["--tenant-id".into(), "bad tenant/x".into()],
            "--tenant-id must be a tenant id or domain".to_owned(),
        ),
        (
            vec!["--registrations".into(), bad_toml.display().to_string()],
            format!(
                "--registrations: {}: line 3, column 1: unknown field `secret`",
                bad_toml.display()
            ),
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["sandbox".to_owned()];
        all.extend(args);
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = common::run_blocking(&args, common::NO_ENV);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_file_adds_apps_and_managed_identities() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sandbox.toml");
    std::fs::write(
        &file,
        "[[app]]\nclient_id = \"6b1c7e6e-2222-4000-8000-0000000000bb\"\ntenant_id = \"fabrikam.example\"\nsecrets = [\"file~secret\"]\n\
         [[managed_identity]]\nclient_id = \"6b1c7e6e-3333-4000-8000-0000000000cc\"\nobject_id = \"6b1c7e6e-4444-4000-8000-0000000000dd\"\n",
    )
    .unwrap();
    let running = sandbox(&["--registrations", file.to_str().unwrap()]);
    let env = running.env_with(
        &["CLIENT_ID", "CLIENT_SECRET", "TENANT_ID"],
        &[
            ("CLIENT_ID", "6b1c7e6e-2222-4000-8000-0000000000bb"),
            ("CLIENT_SECRET", "file~secret"),
            ("TENANT_ID", "fabrikam.example"),
        ],
    );
    let out = run(&["token"], env).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    // The file's managed identity, through the IMDS stand-in.
    let imds = running
        .comments
        .iter()
        .find_map(|c| c.split("AZURE_POD_IDENTITY_AUTHORITY_HOST='").nth(1))
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    let env = vec![
        ("CLIENT_ID", "6b1c7e6e-3333-4000-8000-0000000000cc"),
        ("TENANT_ID", "fabrikam.example"),
        (
            "MANAGED_IDENTITY_CLIENT_ID",
            "6b1c7e6e-3333-4000-8000-0000000000cc",
        ),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let out = run(&["token"], env).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

/// With `--bot`, SIGINT and SIGTERM stop the sandbox within 2 s although stdin stays open.
#[cfg(unix)]
#[test]
fn signals_stop_the_chat_sandbox_while_stdin_is_open() {
    for signal in ["-INT", "-TERM"] {
        let mut running = sandbox(&["--bot", "http://127.0.0.1:9/api/messages"]);
        let pid = running.child.id().to_string();
        let started = Instant::now();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
        let exited = loop {
            if let Some(status) = running.child.try_wait().unwrap() {
                break Some((status, started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(10) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // stdin (piped, never closed) is still open here.
        assert!(running.child.stdin.is_some());
        let (status, took) = exited.unwrap_or_else(|| panic!("{signal}: still running after 10 s"));
        assert_eq!(status.code(), Some(0), "{signal}");
        assert!(took < Duration::from_secs(2), "{signal}: took {took:?}");
    }
}
