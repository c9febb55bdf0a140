//! OAuth and sign-in cards (docs/protocol.md §8, activities).

use serde_json::{Value, json};

use crate::types::SignInResource;

/// The content type of an OAuth card.
pub(crate) const OAUTH_CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.oauth";
/// The content type of a sign-in card.
pub(crate) const SIGNIN_CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.signin";

/// Channels that render a sign-in card but no OAuth card (the SDKs' `channelSupportsOAuthCard`).
const NO_OAUTH_CARD: [&str; 3] = ["cortana", "skype", "skypeforbusiness"];

/// Whether `channel_id` renders OAuth cards.
fn supports_oauth_card(channel_id: &str) -> bool {
    !NO_OAUTH_CARD.contains(&channel_id.to_ascii_lowercase().as_str())
}

/// The card that asks the user to sign in, as an attachment.
///
/// - Channels with OAuth cards get `application/vnd.microsoft.card.oauth` with the sign-in link in
///   its `signin` button (Teams needs the link there; other channels use it too);
///   `tokenExchangeResource` only when `sso` is on (Teams then tries SSO first and sends
///   `signin/tokenExchange`), and `tokenPostResource` when the service gave a SAS URL.
/// - Other channels get a sign-in card (`application/vnd.microsoft.card.signin`) with the link.
///
/// The attachment holds the sign-in link: send it, never log it.
pub(crate) fn sign_in_attachment(
    channel_id: &str,
    connection_name: &str,
    resource: &SignInResource,
    text: &str,
    title: &str,
    sso: bool,
) -> Value {
    let button = json!({
        "type": "signin",
        "title": title,
        "value": resource.sign_in_link.expose_secret(),
    });
    if !supports_oauth_card(channel_id) {
        return json!({
            "contentType": SIGNIN_CARD_CONTENT_TYPE,
            "content": { "text": text, "buttons": [button] },
        });
    }
    let mut content = json!({
        "text": text,
        "connectionName": connection_name,
        "buttons": [button],
    });
    if sso {
        if let Some(resource) = &resource.token_exchange_resource {
            content["tokenExchangeResource"] = json!(resource);
        }
    }
    if let Some(sas) = &resource.token_post_sas_url {
        content["tokenPostResource"] = json!({ "sasUrl": sas.expose_secret() });
    }
    json!({ "contentType": OAUTH_CARD_CONTENT_TYPE, "content": content })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TokenExchangeResource;
    use botauth_core::Secret;

    fn resource() -> SignInResource {
        SignInResource {
            sign_in_link: Secret::new("https://token.example/signin?x=1"),
            token_exchange_resource: Some(TokenExchangeResource {
                id: Some("ter-1".into()),
                uri: Some("api://botid-app".into()),
                provider_id: Some("p".into()),
            }),
            token_post_sas_url: None,
        }
    }

    #[test]
    fn teams_gets_an_oauth_card_with_the_link_and_sso_resource() {
        let card = sign_in_attachment("msteams", "graph", &resource(), "Sign in", "Sign in", true);
        assert_eq!(card["contentType"], OAUTH_CARD_CONTENT_TYPE);
        assert_eq!(card["content"]["connectionName"], "graph");
        assert_eq!(card["content"]["buttons"][0]["type"], "signin");
        assert_eq!(
            card["content"]["buttons"][0]["value"],
            "https://token.example/signin?x=1"
        );
        assert_eq!(card["content"]["tokenExchangeResource"]["id"], "ter-1");
        assert_eq!(
            card["content"]["tokenExchangeResource"]["uri"],
            "api://botid-app"
        );
        let no_sso = sign_in_attachment("msteams", "graph", &resource(), "t", "t", false);
        assert!(no_sso["content"].get("tokenExchangeResource").is_none());
    }

    #[test]
    fn channels_without_oauth_cards_get_a_signin_card() {
        let card = sign_in_attachment("skype", "graph", &resource(), "Sign in", "Go", true);
        assert_eq!(card["contentType"], SIGNIN_CARD_CONTENT_TYPE);
        assert_eq!(card["content"]["buttons"][0]["title"], "Go");
        assert!(card["content"].get("connectionName").is_none());
    }
}
