//! The validator's two halves (issue 13 §1): `verify_token` / `verify_header` judge everything
//! that does not need the activity, `check_activity` the rest; `validate` is the two in a row.

mod common;

use std::time::Duration;

use botauth_sandbox::Route;
use botauth_validator::{ActivityInfo, ErrorKind, ProfileKind};
use common::*;
use serde_json::json;

#[tokio::test]
async fn verify_token_then_check_activity_is_validate() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token();
    let verified = v.verify_token(&token).await.unwrap();
    assert_eq!(verified.profile(), ProfileKind::BotService);
    assert_eq!(verified.expires_at(), env.now() + 3600);
    let claims = v.check_activity(&verified, teams()).unwrap();
    assert_eq!(claims, v.validate(&token, teams()).await.unwrap());
    assert_eq!(claims.service_url(), Some(TEAMS));
    // The same verified token against other activities: the activity rules decide each time.
    let evil = ActivityInfo::new("https://evil.example/", "msteams");
    assert_eq!(
        v.check_activity(&verified, evil).unwrap_err().kind(),
        ErrorKind::ServiceUrl
    );
    let telegram = ActivityInfo::new(TEAMS, "telegram");
    assert_eq!(
        v.check_activity(&verified, telegram).unwrap_err().kind(),
        ErrorKind::Endorsement
    );
    // The Debug output names the profile, never the token.
    let debug = format!("{verified:?}");
    assert!(debug.contains("BotService"), "{debug}");
    assert!(!debug.contains(&token[..20]), "{debug}");
}

#[tokio::test]
async fn verify_token_needs_no_activity_and_judges_everything_else() {
    let env = Env::start().await;
    let v = env.validator();
    let cases = [
        (
            env.token_with(|c| {
                c.insert("exp".into(), json!(env.now() - 3600));
            }),
            ErrorKind::Expired,
        ),
        (
            env.token_with(|c| {
                c.insert("aud".into(), json!("another-bot"));
            }),
            ErrorKind::Audience,
        ),
        (
            env.token_with(|c| {
                c.insert("iss".into(), json!("https://evil.example"));
            }),
            ErrorKind::Issuer,
        ),
        (
            env.token_with(|c| {
                c.remove("serviceurl");
            }),
            ErrorKind::MissingClaim,
        ),
        ("garbage".to_owned(), ErrorKind::Malformed),
    ];
    for (token, expected) in cases {
        assert_eq!(
            v.verify_token(&token).await.unwrap_err().kind(),
            expected,
            "{expected}"
        );
    }
    let mut forged = env.token();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(
        v.verify_token(&forged).await.unwrap_err().kind(),
        ErrorKind::BadSignature
    );
}

#[tokio::test]
async fn verify_header_judges_the_size_before_anything_else() {
    let env = Env::start().await;
    let v = env.validator();
    assert_eq!(
        v.verify_header(None).await.unwrap_err().kind(),
        ErrorKind::MissingToken
    );
    // Over the limit, whatever the scheme: the size is the first thing looked at.
    for header in [
        format!("Bearer {}", "A".repeat(20_000)),
        format!("Basic {}", "A".repeat(20_000)),
        "A".repeat(300 * 1024),
    ] {
        let error = v.verify_header(Some(&header)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TooLarge, "{error:?}");
        // The part and the limit, as Display names them: the token limit (16 KiB by default)
        // plus 64 bytes for the scheme.
        assert_eq!(
            error.to_string(),
            format!(
                "the Authorization header is larger than the {}-byte limit",
                16 * 1024 + 64
            )
        );
    }
    assert_eq!(
        v.verify_header(Some("Basic abc")).await.unwrap_err().kind(),
        ErrorKind::BadScheme
    );
    let token = env.token();
    let verified = v
        .verify_header(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert!(v.check_activity(&verified, teams()).is_ok());
    // A token at the limit with a padded scheme still fits.
    let small = env.builder().max_token_bytes(token.len()).build().unwrap();
    assert!(
        small
            .validate_header(Some(&format!("bearer   {token}  ")), teams())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn check_activity_judges_the_time_again() {
    // Between the two halves the server reads the body: the token may expire meanwhile.
    let env = Env::start().await;
    let v = env.validator();
    let verified = v.verify_token(&env.token()).await.unwrap();
    env.clock.advance(Duration::from_secs(3600 + 300));
    assert_eq!(
        v.check_activity(&verified, teams()).unwrap_err().kind(),
        ErrorKind::Expired
    );
}

#[tokio::test]
async fn a_verified_token_is_checked_only_by_the_validator_that_verified_it() {
    let env = Env::start().await;
    let lenient = env.validator();
    let other = env.builder().strict_endorsements(true).build().unwrap();
    let verified = lenient.verify_token(&env.token()).await.unwrap();
    let error = other.check_activity(&verified, teams()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(!error.is_rejection());
    // A clone shares the validator.
    assert!(lenient.clone().check_activity(&verified, teams()).is_ok());
}

#[tokio::test]
async fn cache_hits_give_verified_tokens_that_are_checked_like_fresh_ones() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token();
    let first = v.verify_token(&token).await.unwrap();
    // The cache keeps a token from its second verification on.
    v.verify_token(&token).await.unwrap();
    let fetches = env.sandbox.count(Route::BotServiceJwks);
    let hit = v.verify_token(&token).await.unwrap();
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), fetches);
    let evil = ActivityInfo::new("https://evil.example/", "msteams");
    for verified in [&first, &hit] {
        assert!(v.check_activity(verified, teams()).is_ok());
        assert_eq!(
            v.check_activity(verified, evil).unwrap_err().kind(),
            ErrorKind::ServiceUrl
        );
    }
    // The key loses its endorsements for msteams; after the refetch the cached verification
    // carries the key as now published, so a hit refuses the channel.
    let kid = env.sandbox.bot_service_kid();
    env.sandbox
        .set_bot_service_endorsements(&kid, Some(vec!["webchat".into()]));
    env.clock.advance(Duration::from_secs(300));
    let probe = env.sign(&json!({"alg": "RS256", "kid": "probe"}), &env.claims());
    assert_eq!(
        v.verify_token(&probe).await.unwrap_err().kind(),
        ErrorKind::UnknownKeyId
    );
    let after = v.verify_token(&token).await.unwrap();
    assert_eq!(
        v.check_activity(&after, teams()).unwrap_err().kind(),
        ErrorKind::Endorsement
    );
    assert!(
        v.check_activity(&after, ActivityInfo::new(TEAMS, "webchat"))
            .is_ok()
    );
}
