//! Where the Token Service is: one default per cloud, one override (docs/protocol.md §8).

use botauth_core::{Cloud, Result};

/// The SDKs' default Token Service of the public cloud (`token.botframework.com` is the same
/// service under the name the docs use).
pub(crate) const PUBLIC_TOKEN_SERVICE_URL: &str = "https://api.botframework.com";
/// The US Government cloud's Token Service (the SDK constant; the docs name
/// `https://token.botframework.azure.us`).
pub(crate) const US_GOV_TOKEN_SERVICE_URL: &str = "https://api.botframework.azure.us";
/// The China cloud's Token Service.
pub(crate) const CHINA_TOKEN_SERVICE_URL: &str = "https://token.botframework.azure.cn";

/// The default Token Service of `cloud`. A custom cloud is matched by its Bot Connector scope
/// (the US Government and China scopes pick their services; anything else the public one).
pub(crate) fn default_token_service_url(cloud: &Cloud) -> &'static str {
    match cloud.bot_connector_scope() {
        "https://api.botframework.us/.default" => US_GOV_TOKEN_SERVICE_URL,
        "https://api.botframework.azure.cn/.default" => CHINA_TOKEN_SERVICE_URL,
        _ => PUBLIC_TOKEN_SERVICE_URL,
    }
}

/// The Token Service base URL for a configuration: `override_url` when set (checked: `https`,
/// or `http` on a loopback host), else the cloud's default. Nothing else changes with the
/// override: the bot's token keeps the cloud's channel scope.
///
/// # Errors
///
/// A configuration error naming `token_service_url` for an unusable override.
pub(crate) fn token_service_url(cloud: &Cloud, override_url: Option<&str>) -> Result<String> {
    match override_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => botauth_core::internal::endpoint::check_endpoint_url("token_service_url", url),
        None => Ok(default_token_service_url(cloud).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_cloud_and_override() {
        assert_eq!(
            token_service_url(&Cloud::Public, None).unwrap(),
            PUBLIC_TOKEN_SERVICE_URL
        );
        assert_eq!(
            token_service_url(&Cloud::UsGov, None).unwrap(),
            US_GOV_TOKEN_SERVICE_URL
        );
        assert_eq!(
            token_service_url(&Cloud::China, None).unwrap(),
            CHINA_TOKEN_SERVICE_URL
        );
        let custom = Cloud::UsGov.with_authority_host("http://127.0.0.1:1");
        assert_eq!(default_token_service_url(&custom), US_GOV_TOKEN_SERVICE_URL);
        assert_eq!(
            token_service_url(
                &Cloud::Public,
                Some("https://europe.token.botframework.com/")
            )
            .unwrap(),
            "https://europe.token.botframework.com"
        );
        assert_eq!(
            token_service_url(&Cloud::Public, Some("http://127.0.0.1:9/")).unwrap(),
            "http://127.0.0.1:9"
        );
        let err = token_service_url(&Cloud::Public, Some("http://token.example")).unwrap_err();
        assert!(err.to_string().contains("token_service_url"), "{err}");
    }
}
