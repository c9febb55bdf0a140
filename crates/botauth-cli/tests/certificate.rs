//! `botauth thumbprint`, and `token` / `demo` with a certificate, run as a user would.

use std::path::PathBuf;
use std::process::Output;

mod common;

use base64::Engine as _;
use botauth_sandbox::{AppRegistration, DEMO_CLIENT_ID, DEMO_TENANT_ID, Sandbox};
use common::{assert_two_way_demo, text};
use openssl::hash::MessageDigest;
use openssl::x509::X509;

const PASSWORD: &str = "fixture-Pfx+pass/1";

fn fixture(name: &str) -> String {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/certs"))
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::run_blocking(args, env.iter().copied())
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `Oct 30 13:30:17 2126 GMT` (OpenSSL's display) as RFC 3339.
fn openssl_time_to_rfc3339(s: &str) -> String {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == parts[0]).expect("fixture") + 1;
    let day: u32 = parts[1].parse().expect("fixture");
    format!("{}-{month:02}-{day:02}T{}Z", parts[3], parts[2])
}

/// The JSON the README documents, in its JSON style (pretty, members in the documented order),
/// computed with OpenSSL independently of botauth.
fn expected_json(pem: &str) -> String {
    let cert = X509::from_pem(&std::fs::read(fixture(pem)).expect("fixture")).expect("fixture");
    let sha1 = cert.digest(MessageDigest::sha1()).expect("fixture");
    let sha256 = cert.digest(MessageDigest::sha256()).expect("fixture");
    let hex: String = sha1.iter().map(|b| format!("{b:02X}")).collect();
    let subject = cert
        .subject_name()
        .entries()
        .map(|e| {
            format!(
                "{}={}",
                e.object().nid().short_name().expect("fixture"),
                e.data().to_string().expect("fixture")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{{\n  \"sha1\": \"{hex}\",\n  \"x5t\": \"{}\",\n  \"x5t#S256\": \"{}\",\n  \"subject\": {},\n  \"not_after\": \"{}\"\n}}",
        b64url(&sha1),
        b64url(&sha256),
        serde_json::Value::from(subject),
        openssl_time_to_rfc3339(&cert.not_after().to_string()),
    )
}

#[test]
fn thumbprint_of_a_pem_certificate() {
    let out = run(&["thumbprint", &fixture("rsa2048.pem")], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout, expected_json("rsa2048.pem") + "\n");
    assert_eq!(text(&out.stderr), "");
    let json = common::assert_json_style(
        &stdout,
        &["sha1", "x5t", "x5t#S256", "subject", "not_after"],
    );
    let sha1 = json["sha1"].as_str().unwrap();
    assert!(
        sha1.len() == 40
            && sha1
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    // A PEM holding the key too, and a chain: the first certificate is the one printed.
    let out = run(&["thumbprint", &fixture("rsa2048.combined.pem")], &[]);
    assert_eq!(text(&out.stdout), expected_json("rsa2048.pem") + "\n");
    let out = run(&["thumbprint", &fixture("chain.pem")], &[]);
    assert_eq!(text(&out.stdout), expected_json("leaf.pem") + "\n");
}

#[test]
fn thumbprint_of_pfx_files() {
    for pfx in ["rsa2048.pfx", "rsa2048.3des.pfx"] {
        let out = run(
            &["thumbprint", &fixture(pfx), "--password-env", "PFX_PASS"],
            &[("PFX_PASS", PASSWORD)],
        );
        assert_eq!(out.status.code(), Some(0), "{pfx}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            expected_json("rsa2048.pem") + "\n",
            "{pfx}"
        );
    }
    let out = run(&["thumbprint", &fixture("rsa2048.nopass.pfx")], &[]);
    assert_eq!(text(&out.stdout), expected_json("rsa2048.pem") + "\n");
}

#[test]
fn thumbprint_failures() {
    // (args, env, exit code, text in stderr)
    let pfx = fixture("rsa2048.pfx");
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![&pfx, "--password-env", "P"],
            vec![("P", "wrong")],
            2,
            "does not open the PFX",
        ),
        (
            vec![&pfx, "--password-env", "UNSET"],
            vec![],
            2,
            "UNSET is not set",
        ),
        (vec!["/nonexistent/bot.pem"], vec![], 2, "does not exist"),
    ];
    for (args, env, code, needle) in cases {
        let mut all = vec!["thumbprint"];
        all.extend(args);
        let out = run(&all, &env);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{all:?}: {err}");
        assert!(err.contains(needle), "{all:?}: {err}");
        assert!(out.stdout.is_empty());
        assert!(!err.contains("wrong"), "the password is not echoed: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("half.pfx");
    let bytes = std::fs::read(&pfx).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = run(&["thumbprint", truncated.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("corrupt or truncated"));
}

/// An encrypted PFX without `--password-env`: a usage error that names the option, not OpenSSL's
/// "mac verify failure".
#[test]
fn thumbprint_of_an_encrypted_pfx_without_a_password_names_the_option() {
    for pfx in ["rsa2048.pfx", "rsa2048.3des.pfx"] {
        let path = fixture(pfx);
        let out = run(&["thumbprint", &path], &[]);
        assert_eq!(out.status.code(), Some(2), "{pfx}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            text(&out.stderr),
            format!(
                "botauth: error: {path} is protected by a password: put the password in an \
                 environment variable and pass --password-env VAR with its name (never the \
                 password itself: the command line is visible to other users)\n"
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_a_certificate_configuration() {
    let sandbox = Sandbox::start().await.unwrap();
    let der = X509::from_pem(&std::fs::read(fixture("rsa2048.pem")).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID).with_certificate_der(der),
    );
    let url = sandbox.url() + "/";
    let pfx = fixture("rsa2048.3des.pfx");
    let env = vec![
        ("AzureAd__Instance", url),
        ("AzureAd__TenantId", DEMO_TENANT_ID.to_owned()),
        ("AzureAd__ClientId", DEMO_CLIENT_ID.to_owned()),
        (
            "AzureAd__ClientCredentials__0__SourceType",
            "Path".to_owned(),
        ),
        ("AzureAd__ClientCredentials__0__CertificateDiskPath", pfx),
        (
            "AzureAd__ClientCredentials__0__CertificatePassword",
            PASSWORD.to_owned(),
        ),
    ];
    let out = common::run(&["token"], env).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["credential"], "certificate");
    let claims = sandbox
        .verify_access_token(json["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims["appid"], DEMO_CLIENT_ID);
}

#[test]
fn token_with_a_wrong_pfx_password_is_one_line_exit_1() {
    let pfx = fixture("rsa2048.pfx");
    let env = [
        ("AzureAd__Instance", "http://127.0.0.1:9/"),
        ("AzureAd__TenantId", DEMO_TENANT_ID),
        ("AzureAd__ClientId", DEMO_CLIENT_ID),
        ("AzureAd__ClientCredentials__0__SourceType", "Path"),
        (
            "AzureAd__ClientCredentials__0__CertificateDiskPath",
            pfx.as_str(),
        ),
        (
            "AzureAd__ClientCredentials__0__CertificatePassword",
            "wrong-pass",
        ),
    ];
    let out = run(&["token"], &env);
    let err = text(&out.stderr);
    // A configuration that names an unusable credential is a configuration error: exit 2.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("does not open the PFX"), "{err}");
    assert!(!err.contains("wrong-pass"));
}

#[test]
fn demo_with_a_certificate() {
    let out = run(
        &["demo", "--credential", "certificate", "--callers", "50"],
        &[],
    );
    assert_two_way_demo(&out, "certificate");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("AuthType=Certificate"), "{stdout}");
    assert!(stdout.contains("credential: certificate"), "{stdout}");
    assert!(!stdout.contains("PRIVATE KEY"));
}

/// A certificate that expires in 10 days and its key, as one PEM; the certificate's DER.
fn short_lived_certificate() -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;
    let key = PKey::from_rsa(Rsa::generate(2048).expect("a test certificate"))
        .expect("a test certificate");
    let mut name = X509NameBuilder::new().expect("a test certificate");
    name.append_entry_by_text("CN", "botauth expiring test")
        .expect("a test certificate");
    let name = name.build();
    let mut cert = X509::builder().expect("a test certificate");
    cert.set_version(2).expect("a test certificate");
    let serial = BigNum::from_u32(16)
        .expect("a test certificate")
        .to_asn1_integer()
        .expect("a test certificate");
    cert.set_serial_number(&serial).expect("a test certificate");
    cert.set_subject_name(&name).expect("a test certificate");
    cert.set_issuer_name(&name).expect("a test certificate");
    cert.set_pubkey(&key).expect("a test certificate");
    cert.set_not_before(&Asn1Time::days_from_now(0).expect("a test certificate"))
        .expect("a test certificate");
    cert.set_not_after(&Asn1Time::days_from_now(10).expect("a test certificate"))
        .expect("a test certificate");
    cert.sign(&key, MessageDigest::sha256())
        .expect("a test certificate");
    let cert = cert.build();
    let mut pem = cert.to_pem().expect("a test certificate");
    pem.extend(key.private_key_to_pem_pkcs8().expect("a test certificate"));
    (pem, cert.to_der().expect("a test certificate"))
}

/// Warnings are on by default (issue 16: `off` hid this one): a token acquired with a certificate
/// close to its end succeeds and says so on stderr, in WARN lines only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_warns_of_a_certificate_close_to_its_end() {
    let sandbox = Sandbox::start().await.unwrap();
    let (pem, der) = short_lived_certificate();
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID).with_certificate_der(der),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.pem");
    std::fs::write(&path, pem).unwrap();
    let env = vec![
        ("AzureAd__Instance", sandbox.url() + "/"),
        ("AzureAd__TenantId", DEMO_TENANT_ID.to_owned()),
        ("AzureAd__ClientId", DEMO_CLIENT_ID.to_owned()),
        (
            "AzureAd__ClientCredentials__0__SourceType",
            "Path".to_owned(),
        ),
        (
            "AzureAd__ClientCredentials__0__CertificateDiskPath",
            path.to_string_lossy().into_owned(),
        ),
    ];
    let out = common::run(&["token"], env).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert!(!err.is_empty());
    for line in err.lines() {
        assert!(
            line.trim_start()
                .starts_with("WARN the client certificate expires within 30 days"),
            "{err}"
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["credential"], "certificate");
}
