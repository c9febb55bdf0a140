//! Every rule of docs/protocol.md §6 against tokens signed by the sandbox's real keys, each with its exact
//! outcome.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth_sandbox::{Route, Sandbox};
use botauth_validator::{
    ActivityInfo, Algorithm, AllowedCallers, EmulatorProfile, EntraProfile, ErrorKind, ProfileKind,
    SkillProfile, Validator, dangerous,
};
use common::*;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{Value, json};

#[tokio::test]
async fn a_valid_channel_token_yields_typed_claims() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token_with(|c| {
        c.insert("appid".into(), json!("channel-app"));
    });
    let claims = v.validate(&token, teams()).await.unwrap();
    assert_eq!(claims.profile(), ProfileKind::BotService);
    assert_eq!(claims.issuer(), "https://api.botframework.com");
    assert_eq!(claims.audience(), APP);
    assert_eq!(claims.service_url(), Some(TEAMS));
    assert_eq!(claims.caller_id(), Some("urn:botframework:azure"));
    assert_eq!(claims.app_id(), Some("channel-app"));
    assert_eq!(claims.tenant_id(), None);
    assert_eq!(claims.expires_at(), env.now() + 3600);
    assert_eq!(claims.claims().get("appid"), Some(&json!("channel-app")));
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["profile"], "bot_service");
    assert_eq!(json["claims"]["serviceurl"], TEAMS);
    // Through the header as the layer sees it, scheme in any case.
    for header in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER  {token}"),
    ] {
        assert!(
            v.validate_header(Some(&header), teams()).await.is_ok(),
            "{header:.10}"
        );
    }
    // The sandbox's own minting path produces tokens the validator accepts too.
    let mut minted = botauth_sandbox::ChannelTokenClaims::new(APP, TEAMS);
    minted.extra.insert("channelId".into(), json!("msteams"));
    assert!(
        v.validate(&env.sandbox.mint_channel_token(minted), teams())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn authorization_header_rules() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token();
    let cases: [(Option<String>, ErrorKind); 6] = [
        (None, ErrorKind::MissingToken),
        (Some(format!("Basic {token}")), ErrorKind::BadScheme),
        (
            Some(format!("Bearer {token} {token}")),
            ErrorKind::BadScheme,
        ),
        (
            Some(format!("Bearer {token},{token}")),
            ErrorKind::BadScheme,
        ),
        (Some("Bearer".into()), ErrorKind::BadScheme),
        (Some(token.clone()), ErrorKind::BadScheme),
    ];
    for (header, expected) in cases {
        let e = v
            .validate_header(header.as_deref(), teams())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), expected, "{header:.20?}");
    }
    let small = env.builder().max_token_bytes(100).build().unwrap();
    assert_eq!(kind(&small, &token).await, ErrorKind::TooLarge);
}

#[tokio::test]
async fn algorithms_are_judged_before_any_key_lookup() {
    let env = Env::start().await;
    let v = env.validator();
    let kid = env.sandbox.bot_service_kid();
    for alg in [
        "none", "HS256", "HS512", "ES256", "PS256", "PS512", "EdDSA", "rs256",
    ] {
        let token = env.sign(&json!({"alg": alg, "kid": kid}), &env.claims());
        assert_eq!(kind(&v, &token).await, ErrorKind::Algorithm, "{alg}");
    }
    // The classic `alg: none` token with an empty signature.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(env.claims().to_string())
    );
    assert_eq!(kind(&v, &none).await, ErrorKind::Algorithm);
    // An HMAC token "signed" with the public key's bytes (the RS/HS confusion attack).
    let hs = env.sign(&json!({"alg": "HS256", "kid": kid}), &env.claims());
    assert_eq!(kind(&v, &hs).await, ErrorKind::Algorithm);
    assert_eq!(
        env.sandbox.count(Route::BotServiceMetadata),
        0,
        "no key was looked up"
    );

    for alg in ["RS256", "RS384", "RS512"] {
        let token = env.sign(&json!({"alg": alg, "kid": kid}), &env.claims());
        assert!(v.validate(&token, teams()).await.is_ok(), "{alg}");
    }
    let only256 = env
        .builder()
        .algorithms([Algorithm::Rs256])
        .build()
        .unwrap();
    let rs512 = env.sign(&json!({"alg": "RS512", "kid": kid}), &env.claims());
    assert_eq!(kind(&only256, &rs512).await, ErrorKind::Algorithm);
}

#[tokio::test]
async fn header_rules_crit_kid_and_ignored_key_pointers() {
    let env = Env::start().await;
    let v = env.validator();
    let kid = env.sandbox.bot_service_kid();
    let crit = env.sign(
        &json!({"alg": "RS256", "kid": kid, "crit": ["b64"], "b64": false}),
        &env.claims(),
    );
    assert_eq!(kind(&v, &crit).await, ErrorKind::CriticalHeader);
    let no_kid = env.sign(&json!({"alg": "RS256"}), &env.claims());
    assert_eq!(kind(&v, &no_kid).await, ErrorKind::MissingKeyId);
    let unknown = env.sign(&json!({"alg": "RS256", "kid": "not-a-kid"}), &env.claims());
    assert_eq!(kind(&v, &unknown).await, ErrorKind::UnknownKeyId);

    // A token signed by a real key that also names other keys is judged on its own merits, and
    // the named locations are never fetched.
    let elsewhere = Sandbox::start().await.unwrap();
    let attacker = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let rsa = attacker.rsa().unwrap();
    let attacker_jwk = json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec())});
    let pointers = json!({
        "alg": "RS256", "kid": kid,
        "jku": elsewhere.bot_service_metadata_url().replace("openidconfiguration", "keys"),
        "x5u": format!("{}/x5u", elsewhere.url()),
        "jwk": attacker_jwk,
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    });
    let genuine = env.sign(&pointers, &env.claims());
    assert!(v.validate(&genuine, teams()).await.is_ok());
    // The same header on a token signed by the key it embeds: the embedded key is not used.
    let forged = sign_with(&attacker, &pointers, &env.claims());
    assert_eq!(kind(&v, &forged).await, ErrorKind::BadSignature);
    assert_eq!(elsewhere.requests().len(), 0, "jku/x5u were fetched");
}

fn sign_with(key: &PKey<openssl::pkey::Private>, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).expect("signer");
    signer.update(input.as_bytes()).expect("update");
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().expect("sign"))
    )
}

#[tokio::test]
async fn tampered_tokens_fail_the_signature() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = env.claims();
    claims["aud"] = json!(APP);
    claims["exp"] = json!(env.now() + 7200);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(kind(&v, &parts.join(".")).await, ErrorKind::BadSignature);
    // A truncated signature.
    let short = format!("{}.{}", &token[..token.rfind('.').unwrap()], "AAAA");
    assert_eq!(kind(&v, &short).await, ErrorKind::BadSignature);
}

#[tokio::test]
async fn keys_below_2048_bits_are_unusable() {
    let env = Env::start().await;
    let weak = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let rsa = weak.rsa().unwrap();
    let weak_jwk = json!({"kty": "RSA", "kid": "weak", "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec())});
    // A fixed key set needs one usable key besides: the sandbox's.
    let live: Value = reqwest::get(
        env.sandbox
            .bot_service_metadata_url()
            .replace("openidconfiguration", "keys"),
    )
    .await
    .unwrap()
    .bytes()
    .await
    .map(|b| serde_json::from_slice(&b).unwrap())
    .unwrap();
    let mut keys = vec![weak_jwk];
    keys.extend(live["keys"].as_array().unwrap().iter().cloned());
    let v = env
        .builder()
        .fixed_jwks(
            env.sandbox.bot_service_metadata_url(),
            json!({"keys": keys}),
        )
        .build()
        .unwrap();
    let token = sign_with(
        &weak,
        &json!({"alg": "RS256", "kid": "weak"}),
        &env.claims(),
    );
    assert_eq!(kind(&v, &token).await, ErrorKind::UnusableKey);
    assert!(v.validate(&env.token(), teams()).await.is_ok());
}

#[tokio::test]
async fn issuer_and_audience() {
    let env = Env::start().await;
    let v = env.validator();
    type Edit = Box<dyn Fn(&mut serde_json::Map<String, Value>)>;
    let cases: Vec<(Edit, ErrorKind)> = vec![
        (
            Box::new(|c| {
                c.insert("iss".into(), json!("https://api.botframework.com/"));
            }),
            ErrorKind::Issuer,
        ),
        (
            Box::new(|c| {
                c.insert("iss".into(), json!("https://API.botframework.com"));
            }),
            ErrorKind::Issuer,
        ),
        (
            Box::new(|c| {
                c.insert("iss".into(), json!(["https://api.botframework.com"]));
            }),
            ErrorKind::ClaimType,
        ),
        (
            Box::new(|c| {
                c.remove("iss");
            }),
            ErrorKind::MissingClaim,
        ),
        (
            Box::new(|c| {
                c.insert("aud".into(), json!("another-bot"));
            }),
            ErrorKind::Audience,
        ),
        (
            Box::new(|c| {
                c.insert("aud".into(), json!(format!("api://{APP}")));
            }),
            ErrorKind::Audience,
        ),
        (
            Box::new(|c| {
                c.insert("aud".into(), json!([APP, "another-bot"]));
            }),
            ErrorKind::Audience,
        ),
        (
            Box::new(|c| {
                c.insert("aud".into(), json!(42));
            }),
            ErrorKind::ClaimType,
        ),
        (
            Box::new(|c| {
                c.remove("aud");
            }),
            ErrorKind::MissingClaim,
        ),
    ];
    for (i, (edit, expected)) in cases.into_iter().enumerate() {
        assert_eq!(kind(&v, &env.token_with(edit)).await, expected, "case {i}");
    }
    let array = env.token_with(|c| {
        c.insert("aud".into(), json!([APP]));
    });
    assert_eq!(v.validate(&array, teams()).await.unwrap().audience(), APP);
    let extra = env
        .builder()
        .audience(format!("api://{APP}"))
        .build()
        .unwrap();
    let api = env.token_with(|c| {
        c.insert("aud".into(), json!(format!("api://{APP}")));
    });
    assert_eq!(
        extra.validate(&api, teams()).await.unwrap().audience(),
        format!("api://{APP}")
    );
}

#[tokio::test]
async fn time_claims_with_skew_and_types() {
    let env = Env::start().await;
    let v = env.validator();
    let now = env.now();
    let at = |exp: Value, nbf: Option<Value>| {
        env.token_with(|c| {
            c.insert("exp".into(), exp);
            match nbf {
                Some(nbf) => c.insert("nbf".into(), nbf),
                None => c.remove("nbf"),
            };
        })
    };
    let cases = [
        (at(json!(now - 300), None), Some(ErrorKind::Expired)),
        (at(json!(now - 299), None), None),
        (
            at(json!(now + 60), Some(json!(now + 301))),
            Some(ErrorKind::NotYetValid),
        ),
        (at(json!(now + 60), Some(json!(now + 300))), None),
        (
            at(json!((now + 60).to_string()), None),
            Some(ErrorKind::ClaimType),
        ),
        (at(json!(null), None), Some(ErrorKind::ClaimType)),
        (
            at(json!(now + 60), Some(json!("0"))),
            Some(ErrorKind::ClaimType),
        ),
        (
            at(json!(now as f64 + 60.5), Some(json!(now as f64 - 0.5))),
            None,
        ),
    ];
    for (i, (token, expected)) in cases.iter().enumerate() {
        match expected {
            Some(k) => assert_eq!(kind(&v, token).await, *k, "case {i}"),
            None => assert!(v.validate(token, teams()).await.is_ok(), "case {i}"),
        }
    }
    let no_exp = env.token_with(|c| {
        c.remove("exp");
    });
    assert_eq!(kind(&v, &no_exp).await, ErrorKind::MissingClaim);
    let strict = env.builder().clock_skew(Duration::ZERO).build().unwrap();
    assert_eq!(
        kind(&strict, &at(json!(now), None)).await,
        ErrorKind::Expired
    );
    assert!(
        strict
            .validate(&at(json!(now + 1), None), teams())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn service_url_claim_must_match_the_activity() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token();
    for same in [
        "https://smba.trafficmanager.net/teams/",
        "https://smba.trafficmanager.net/teams",
        "HTTPS://SMBA.TRAFFICMANAGER.NET/TEAMS/",
    ] {
        assert!(
            v.validate(&token, ActivityInfo::new(same, "msteams"))
                .await
                .is_ok(),
            "{same}"
        );
    }
    for other in [
        "https://smba.trafficmanager.net/amer/",
        "https://smba.trafficmanager.net/teams//",
        "https://evil.example/teams/",
        "",
    ] {
        assert_eq!(
            kind_for(&v, &token, ActivityInfo::new(other, "msteams")).await,
            ErrorKind::ServiceUrl,
            "{other}"
        );
    }
    let missing = env.token_with(|c| {
        c.remove("serviceurl");
    });
    assert_eq!(kind(&v, &missing).await, ErrorKind::MissingClaim);
    let number = env.token_with(|c| {
        c.insert("serviceurl".into(), json!(1));
    });
    assert_eq!(kind(&v, &number).await, ErrorKind::ClaimType);
    // Diagnostics may skip the comparison, never the claim.
    assert!(
        v.validate(&token, dangerous::unchecked_activity())
            .await
            .is_ok()
    );
    assert_eq!(
        kind_for(&v, &missing, dangerous::unchecked_activity()).await,
        ErrorKind::MissingClaim
    );
}

#[tokio::test]
async fn endorsements_lax_and_strict() {
    let env = Env::start().await;
    let token = env.token();
    let v = env.validator();
    assert!(
        v.validate(&token, ActivityInfo::new(TEAMS, "webchat"))
            .await
            .is_ok()
    );
    for channel in ["telegram", "MSTEAMS", ""] {
        assert_eq!(
            kind_for(&v, &token, ActivityInfo::new(TEAMS, channel)).await,
            ErrorKind::Endorsement,
            "{channel}"
        );
    }
    let strict = env.builder().strict_endorsements(true).build().unwrap();
    assert!(strict.validate(&token, teams()).await.is_ok());

    // A key without endorsements: fine when lax, refused when strict.
    env.sandbox
        .set_bot_service_endorsements(&env.sandbox.bot_service_kid(), None);
    let lax = env.validator();
    assert!(
        lax.validate(&token, ActivityInfo::new(TEAMS, "telegram"))
            .await
            .is_ok()
    );
    let strict = env.builder().strict_endorsements(true).build().unwrap();
    assert_eq!(kind(&strict, &token).await, ErrorKind::Endorsement);
}

fn entra_claims(env: &Env, iss: String, ver: &str, caller: &str) -> Value {
    let now = env.now();
    let mut c = json!({"iss": iss, "aud": APP, "tid": TENANT, "ver": ver, "nbf": now, "iat": now, "exp": now + 3600});
    c[if ver == "2.0" { "azp" } else { "appid" }] = json!(caller);
    c
}

fn entra_header(env: &Env) -> Value {
    json!({"alg": "RS256", "kid": env.sandbox.entra_kid(), "typ": "JWT"})
}

#[tokio::test]
async fn entra_single_tenant_tokens() {
    let env = Env::start().await;
    let url = env.sandbox.url();
    let v2 = format!("{url}/{TENANT}/v2.0");
    let v1 = format!("{url}/sts/{TENANT}/");
    let builder = || {
        Validator::builder(APP)
            .profile(
                EntraProfile::new(TENANT.to_uppercase())
                    .authority_host(&url)
                    .v1_issuer_host(format!("{url}/sts")),
            )
            .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
    };
    let v = builder().build().unwrap();
    let h = entra_header(&env);
    let sign = |c: &Value| env.sandbox.sign_with_entra_key(&h, c);

    let ok = v
        .validate(
            &sign(&entra_claims(&env, v2.clone(), "2.0", "caller-app")),
            dangerous::unchecked_activity(),
        )
        .await
        .unwrap();
    assert_eq!(ok.profile(), ProfileKind::Entra);
    assert_eq!(ok.tenant_id(), Some(TENANT));
    assert_eq!(ok.app_id(), Some("caller-app"));
    assert_eq!(ok.caller_id(), Some("urn:botframework:aadappid:caller-app"));
    let mut api = entra_claims(&env, v1.clone(), "1.0", "caller-app");
    api["aud"] = json!(format!("api://{APP}"));
    assert_eq!(
        v.validate(&sign(&api), teams()).await.unwrap().audience(),
        format!("api://{APP}")
    );
    assert_eq!(env.sandbox.count(Route::EntraMetadata), 1);

    let edit = |iss: &str, ver: &str, f: &dyn Fn(&mut Value)| {
        let mut c = entra_claims(&env, iss.to_owned(), ver, "caller-app");
        f(&mut c);
        sign(&c)
    };
    let cases = [
        (
            edit(&v2, "2.0", &|c| {
                c["tid"] = json!("00000000-0000-0000-0000-000000000000")
            }),
            ErrorKind::Tenant,
        ),
        (
            edit(&v2, "2.0", &|c| {
                c.as_object_mut().unwrap().remove("tid");
            }),
            ErrorKind::MissingClaim,
        ),
        (
            edit(&v2, "2.0", &|c| c["tid"] = json!(7)),
            ErrorKind::ClaimType,
        ),
        (
            edit(&v2, "2.0", &|c| c["ver"] = json!("1.0")),
            ErrorKind::ClaimType,
        ),
        (
            edit(&v1, "1.0", &|c| c["ver"] = json!("2.0")),
            ErrorKind::ClaimType,
        ),
        (
            edit(&v2, "2.0", &|c| c["ver"] = json!(2.0)),
            ErrorKind::ClaimType,
        ),
        (
            edit(&v2, "2.0", &|c| {
                c.as_object_mut().unwrap().remove("azp");
            }),
            ErrorKind::MissingClaim,
        ),
        (
            edit(&v2, "2.0", &|c| c["aud"] = json!("api://other")),
            ErrorKind::Audience,
        ),
        // The tenant comes from configuration: another tenant's issuer is simply unknown.
        (
            edit(
                &format!("{url}/00000000-0000-0000-0000-000000000000/v2.0"),
                "2.0",
                &|_| {},
            ),
            ErrorKind::Issuer,
        ),
        (
            edit(&format!("{url}/common/v2.0"), "2.0", &|_| {}),
            ErrorKind::Issuer,
        ),
    ];
    for (i, (token, expected)) in cases.iter().enumerate() {
        assert_eq!(kind(&v, token).await, *expected, "case {i}");
    }

    let restricted = builder()
        .profile(
            EntraProfile::new(TENANT)
                .authority_host(&url)
                .v1_issuer_host(format!("{url}/sts"))
                .allowed_callers(AllowedCallers::from_list(["Allowed-App"])),
        )
        .build()
        .unwrap();
    let allowed = sign(&entra_claims(&env, v2.clone(), "2.0", "allowed-app"));
    assert_eq!(
        restricted
            .validate(&allowed, teams())
            .await
            .unwrap()
            .profile(),
        ProfileKind::Entra
    );
    let denied = sign(&entra_claims(&env, v1.clone(), "1.0", "other-app"));
    assert_eq!(kind(&restricted, &denied).await, ErrorKind::Caller);

    // Strict endorsements concern Bot Service keys; Entra keys carry none.
    let strict = builder().strict_endorsements(true).build().unwrap();
    assert_eq!(
        strict.validate(&allowed, teams()).await.unwrap().profile(),
        ProfileKind::Entra
    );
}

#[tokio::test]
async fn emulator_and_skills_are_off_by_default_and_follow_their_rules() {
    let env = Env::start().await;
    let url = env.sandbox.url();
    let bf = BOT_FRAMEWORK_TENANT;
    let v2 = format!("{url}/{bf}/v2.0");
    let v1 = format!("{url}/sts/{bf}/");
    let h = entra_header(&env);
    let token = |iss: &str, ver: &str, caller: &str| {
        let mut c = entra_claims(&env, iss.to_owned(), ver, caller);
        c["tid"] = json!(bf);
        env.sandbox.sign_with_entra_key(&h, &c)
    };

    // Off by default: a channel-only validator does not know these issuers.
    let channel_only = env.validator();
    assert_eq!(
        kind(&channel_only, &token(&v2, "2.0", APP)).await,
        ErrorKind::Issuer
    );

    let emulator = Validator::builder(APP)
        .profile(
            EmulatorProfile::new()
                .authority_host(&url)
                .v1_issuer_host(format!("{url}/sts")),
        )
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap();
    let claims = emulator
        .validate(&token(&v1, "1.0", APP), dangerous::unchecked_activity())
        .await
        .unwrap();
    assert_eq!(claims.profile(), ProfileKind::Emulator);
    assert_eq!(claims.caller_id(), None);
    assert_eq!(
        emulator
            .validate(&token(&v2, "2.0", APP), teams())
            .await
            .unwrap()
            .profile(),
        ProfileKind::Emulator
    );
    assert_eq!(
        kind(&emulator, &token(&v2, "2.0", "someone-else")).await,
        ErrorKind::Caller
    );
    let mut no_ver = entra_claims(&env, v1.clone(), "1.0", APP);
    no_ver["tid"] = json!(bf);
    no_ver.as_object_mut().unwrap().remove("ver");
    assert_eq!(
        kind(&emulator, &env.sandbox.sign_with_entra_key(&h, &no_ver)).await,
        ErrorKind::MissingClaim
    );
    assert_eq!(
        env.sandbox.count(Route::EntraMetadata),
        1,
        "the `common` metadata, once"
    );

    let skills = Validator::builder(APP)
        .profile(
            SkillProfile::new(AllowedCallers::from_list(["skill-caller"]))
                .authority_host(&url)
                .v1_issuer_host(format!("{url}/sts")),
        )
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap();
    let claims = skills
        .validate(&token(&v2, "2.0", "skill-caller"), teams())
        .await
        .unwrap();
    assert_eq!(claims.profile(), ProfileKind::Skill);
    assert_eq!(
        claims.caller_id(),
        Some("urn:botframework:aadappid:skill-caller")
    );
    assert_eq!(
        kind(&skills, &token(&v2, "2.0", "stranger")).await,
        ErrorKind::Caller
    );
    // The emulator rule is not implied by skills.
    assert_eq!(
        kind(&skills, &token(&v2, "2.0", APP)).await,
        ErrorKind::Caller
    );
    let any = Validator::builder(APP)
        .profile(
            SkillProfile::new(AllowedCallers::from_list(["*"]))
                .authority_host(&url)
                .v1_issuer_host(format!("{url}/sts")),
        )
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap();
    assert_eq!(
        any.validate(&token(&v1, "1.0", "stranger"), teams())
            .await
            .unwrap()
            .profile(),
        ProfileKind::Skill
    );
}

#[tokio::test]
async fn skills_from_the_configuration_file() {
    let env = Env::start().await;
    let url = env.sandbox.url();
    let bf = BOT_FRAMEWORK_TENANT;
    let h = entra_header(&env);
    let token = |caller: &str| {
        let mut c = entra_claims(&env, format!("{url}/{bf}/v2.0"), "2.0", caller);
        c["tid"] = json!(bf);
        env.sandbox.sign_with_entra_key(&h, &c)
    };
    let file = |inbound: &str| {
        botauth_core::BotAuthConfig::from_toml_str(&format!(
            "client_id = \"{APP}\"\ntenant_id = \"{TENANT}\"\n{cloud}\n\
             [[credentials]]\ntype = \"client_secret\"\nsecret = \"unused~secret\"\n\
             [inbound]\n{inbound}\n",
            cloud = env.sandbox.cloud_toml()
        ))
        .unwrap()
    };
    let config = file("skills = true\nallowed_callers = [\"parent-bot\"]");
    let v = Validator::from_config(&config).unwrap();
    let claims = v.validate(&token("parent-bot"), teams()).await.unwrap();
    assert_eq!(claims.profile(), ProfileKind::Skill);
    assert_eq!(claims.app_id(), Some("parent-bot"));
    assert_eq!(kind(&v, &token("stranger")).await, ErrorKind::Caller);
    // Off by default, and on without callers is a configuration error naming the key.
    let off = Validator::from_config(&file("allowed_callers = [\"parent-bot\"]")).unwrap();
    assert_eq!(kind(&off, &token("parent-bot")).await, ErrorKind::Issuer);
    let error = Validator::from_config(&file("skills = true")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error:?}");
    assert_eq!(error.config_key(), Some("inbound.allowed_callers"));
}

#[tokio::test]
async fn no_process_global_issuer_list() {
    // Accepting a token in one validator never widens another (the Bot Framework SDK bug).
    let env = Env::start().await;
    let url = env.sandbox.url();
    let entra = Validator::builder(APP)
        .profile(EntraProfile::new(TENANT).authority_host(&url))
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap();
    let h = entra_header(&env);
    let token = env.sandbox.sign_with_entra_key(
        &h,
        &entra_claims(&env, format!("{url}/{TENANT}/v2.0"), "2.0", "a"),
    );
    assert!(entra.validate(&token, teams()).await.is_ok());
    let channel_only = env.validator();
    assert_eq!(kind(&channel_only, &token).await, ErrorKind::Issuer);
    let other_bot = Validator::builder("other-bot")
        .profile(EntraProfile::new(TENANT).authority_host(&url))
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap();
    assert_eq!(kind(&other_bot, &token).await, ErrorKind::Audience);
}

#[tokio::test]
async fn the_verified_token_cache_rechecks_per_request_rules() {
    let env = Env::start().await;
    let v = env.validator();
    let token = env.token();
    // Twice: the cache keeps a token from its second verification on.
    assert!(v.validate(&token, teams()).await.is_ok());
    assert!(v.validate(&token, teams()).await.is_ok());
    let fetches = env.sandbox.count(Route::BotServiceJwks);
    // Hits: same outcome without new fetches; per-request rules still apply.
    assert!(v.validate(&token, teams()).await.is_ok());
    assert_eq!(
        kind_for(
            &v,
            &token,
            ActivityInfo::new("https://evil.example/", "msteams")
        )
        .await,
        ErrorKind::ServiceUrl
    );
    assert_eq!(
        kind_for(&v, &token, ActivityInfo::new(TEAMS, "telegram")).await,
        ErrorKind::Endorsement
    );
    env.clock.advance(Duration::from_secs(3600 + 300));
    assert_eq!(kind(&v, &token).await, ErrorKind::Expired);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), fetches);
}

#[tokio::test]
async fn built_from_the_configuration_model() {
    let env = Env::start().await;
    let vars = [
        ("MicrosoftAppId", APP.to_owned()),
        ("MicrosoftAppPassword", "unused".to_owned()),
        ("MicrosoftAppTenantId", TENANT.to_owned()),
        (
            "BOTAUTH_METADATA_URL",
            env.sandbox.bot_service_metadata_url(),
        ),
    ];
    let mut config = botauth_core::BotAuthConfig::from_vars(vars).unwrap();
    let v = Validator::from_config(&config).unwrap();
    let claims = v
        .validate(
            &env.sandbox
                .mint_channel_token(botauth_sandbox::ChannelTokenClaims::new(APP, TEAMS)),
            teams(),
        )
        .await
        .unwrap();
    assert_eq!(claims.caller_id(), Some("urn:botframework:azure"));
    // Entra tenants and extra audiences from the model; a missing app id is named.
    config.inbound.entra_tenants = vec![TENANT.into()];
    config.inbound.extra_audiences = vec!["https://bot.example".into()];
    let debug = format!("{:?}", Validator::from_config(&config).unwrap());
    assert!(
        debug.contains(&format!("https://login.microsoftonline.com/{TENANT}/v2.0")),
        "{debug}"
    );
    assert!(
        debug.contains(&format!("https://sts.windows.net/{TENANT}/")),
        "{debug}"
    );
    config.client_id = None;
    let error = Validator::from_config(&config).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error:?}");
    assert_eq!(error.config_key(), Some("client_id"));
}
