//! Inbound settings from every configuration dialect (issue 12): Agents `TokenValidation` and
//! the Bot Framework `ToBotFrom…` keys reach the validator and change what it accepts.

#![allow(clippy::unwrap_used)]

mod common;

use botauth_core::BotAuthConfig;
use botauth_validator::{ErrorKind, ProfileKind, Validator, ValidatorBuilder};
use common::*;
use serde_json::json;

const SECRET: &str = "unused~secret";

fn agents(env: &Env, extra: &[(&str, String)]) -> BotAuthConfig {
    let mut vars = vec![
        (
            "Connections__ServiceConnection__Settings__ClientId",
            APP.to_owned(),
        ),
        (
            "Connections__ServiceConnection__Settings__TenantId",
            TENANT.to_owned(),
        ),
        (
            "Connections__ServiceConnection__Settings__ClientSecret",
            SECRET.to_owned(),
        ),
        (
            "TokenValidation__AzureBotServiceOpenIdMetadataUrl",
            env.sandbox.bot_service_metadata_url(),
        ),
    ];
    vars.extend(extra.iter().cloned());
    BotAuthConfig::from_vars(vars).unwrap()
}

fn validator(env: &Env, config: &BotAuthConfig) -> Validator {
    ValidatorBuilder::from_config(config)
        .unwrap()
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn valid_issuers_restrict_what_the_profiles_accept() {
    let env = Env::start().await;
    let listed = agents(
        &env,
        &[(
            "TokenValidation__ValidIssuers__0",
            "https://api.botframework.com".into(),
        )],
    );
    let v = validator(&env, &listed);
    let claims = v.validate(&env.token(), teams()).await.unwrap();
    assert_eq!(claims.profile(), ProfileKind::BotService);

    let other = agents(
        &env,
        &[(
            "TokenValidation__ValidIssuers__0",
            "https://issuer.example".into(),
        )],
    );
    assert_eq!(
        kind(&validator(&env, &other), &env.token()).await,
        ErrorKind::ClaimsCheck
    );
}

#[tokio::test]
async fn bot_service_token_handling_off_refuses_channel_tokens() {
    let env = Env::start().await;
    let config = agents(
        &env,
        &[
            (
                "TokenValidation__AzureBotServiceTokenHandling",
                "false".into(),
            ),
            ("TokenValidation__TenantId", TENANT.into()),
        ],
    );
    assert!(!config.inbound.bot_service);
    assert_eq!(
        kind(&validator(&env, &config), &env.token()).await,
        ErrorKind::Issuer
    );
}

#[tokio::test]
async fn token_validation_tenant_and_metadata_url_accept_entra_tokens() {
    let env = Env::start().await;
    let url = env.sandbox.url();
    let config = agents(
        &env,
        &[
            ("TokenValidation__TenantId", TENANT.into()),
            (
                "TokenValidation__OpenIdMetadataUrl",
                format!("{url}/common/v2.0/.well-known/openid-configuration"),
            ),
            ("TokenValidation__AllowedCallers__0", "caller-app".into()),
        ],
    );
    let v = validator(&env, &config);
    let now = env.now();
    let header = json!({"alg": "RS256", "kid": env.sandbox.entra_kid(), "typ": "JWT"});
    let token = |caller: &str| {
        let claims = json!({"iss": format!("{url}/{TENANT}/v2.0"), "aud": APP, "tid": TENANT,
            "ver": "2.0", "azp": caller, "nbf": now, "iat": now, "exp": now + 3600});
        env.sandbox.sign_with_entra_key(&header, &claims)
    };
    let claims = v.validate(&token("caller-app"), teams()).await.unwrap();
    assert_eq!(claims.profile(), ProfileKind::Entra);
    assert_eq!(kind(&v, &token("stranger")).await, ErrorKind::Caller);
}

#[tokio::test]
async fn bot_framework_channel_token_issuer_is_the_accepted_issuer() {
    let env = Env::start().await;
    let config = BotAuthConfig::from_vars([
        ("MicrosoftAppId", APP.to_owned()),
        ("MicrosoftAppPassword", SECRET.to_owned()),
        (
            "ToBotFromChannelOpenIdMetadataUrl",
            env.sandbox.bot_service_metadata_url(),
        ),
        (
            "ToBotFromChannelTokenIssuer",
            "https://issuer.example".to_owned(),
        ),
    ])
    .unwrap();
    assert_eq!(
        kind(&validator(&env, &config), &env.token()).await,
        ErrorKind::Issuer
    );
    let token = env.token_with(|c| {
        c.insert("iss".into(), json!("https://issuer.example"));
    });
    assert!(
        validator(&env, &config)
            .validate(&token, teams())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_metadata_url_of_the_wrong_shape_is_a_configuration_error() {
    let env = Env::start().await;
    let config = agents(
        &env,
        &[
            ("TokenValidation__TenantId", TENANT.into()),
            (
                "TokenValidation__OpenIdMetadataUrl",
                "https://login.example/keys.json".into(),
            ),
        ],
    );
    let error = ValidatorBuilder::from_config(&config).unwrap_err();
    assert_eq!(
        error.kind(),
        botauth_validator::ErrorKind::Config,
        "{error:?}"
    );
    assert_eq!(error.config_key(), Some("inbound.entra_metadata_url"));
    // Display is "validator configuration `<key>`: <message>".
    assert!(
        error
            .to_string()
            .contains("/v2.0/.well-known/openid-configuration"),
        "{error}"
    );
}
