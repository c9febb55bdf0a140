//! Issue 12: a credential entry that fails to load is logged with its cause, and "trying the next
//! one" is said only when there is a next one.

use botauth::{BotAuth, BotAuthConfig};
use botauth_e2e::CapturedLogs;
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};

fn idweb(sandbox: &Sandbox, entries: &[(&str, &str)]) -> BotAuthConfig {
    let mut vars = vec![
        ("AzureAd__ClientId".to_owned(), DEMO_CLIENT_ID.to_owned()),
        ("AzureAd__TenantId".to_owned(), DEMO_TENANT_ID.to_owned()),
        ("AzureAd__Instance".to_owned(), sandbox.url()),
    ];
    vars.extend(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    BotAuthConfig::from_vars(vars).expect("configuration")
}

#[tokio::test]
async fn a_failed_entry_is_logged_with_its_cause_and_the_next_one_is_used() {
    let logs = CapturedLogs::install();
    let sandbox = Sandbox::start().await.expect("sandbox");
    let missing = "/nonexistent/botauth/bot.pfx";
    let config = idweb(
        &sandbox,
        &[
            ("AzureAd__ClientCredentials__0__SourceType", "Path"),
            (
                "AzureAd__ClientCredentials__0__CertificateDiskPath",
                missing,
            ),
            ("AzureAd__ClientCredentials__1__SourceType", "ClientSecret"),
            (
                "AzureAd__ClientCredentials__1__ClientSecret",
                DEMO_CLIENT_SECRET,
            ),
        ],
    );
    let auth = BotAuth::from_config(config).expect("the second entry loads");
    auth.connector_token()
        .await
        .expect("a token from the fallback");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("credential could not be loaded"))
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("trying the next one"), "{line}");
    assert!(
        line.contains("AzureAd__ClientCredentials__0__CertificateDiskPath"),
        "{line}"
    );
    assert!(
        line.contains(&format!("{missing} does not exist")),
        "{line}"
    );

    // The last entry failing: no "trying the next one", and the error keeps both causes.
    let before = logs.text().len();
    let config = idweb(
        &sandbox,
        &[
            ("AzureAd__ClientCredentials__0__SourceType", "Path"),
            (
                "AzureAd__ClientCredentials__0__CertificateDiskPath",
                missing,
            ),
            ("AzureAd__ClientCredentials__1__SourceType", "Path"),
            (
                "AzureAd__ClientCredentials__1__CertificateDiskPath",
                "/nonexistent/other.pfx",
            ),
        ],
    );
    let error = BotAuth::from_config(config).expect_err("nothing loads");
    let message = botauth::Report::new(&error).to_string();
    assert!(
        message.contains(&format!("{missing} does not exist")),
        "{message}"
    );
    assert!(
        message.contains("/nonexistent/other.pfx does not exist"),
        "{message}"
    );
    let after = logs.text()[before..].to_owned();
    let warnings: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("credential could not be loaded"))
        .collect();
    assert_eq!(warnings.len(), 2, "{after}");
    assert!(warnings[0].contains("trying the next one"), "{after}");
    assert!(warnings[1].contains("it was the last one"), "{after}");
    assert!(!warnings[1].contains("trying the next one"), "{after}");
}
