//! Certificate-signed assertions: `x5t`, `x5t#S256` and `x5c`, thumbprint forms, expired
//! certificates, and trust by subject name and issuer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde_json::{Value, json};

use super::fixture::*;
use crate::AppRegistration;
use crate::clock::unix_now;
use crate::jwt::{Alg, SigningKey, b64url, sign_jws, x5t, x5t_s256};

#[tokio::test]
async fn certificate_assertion_rs256_x5t_succeeds() {
    let f = Fixture::new().await;
    let claims = f.assert_ok(&f.assertion(&f.claims())).await;
    assert_eq!(claims["appid"], CLIENT_ID);
    assert_eq!(claims["tid"], TENANT);
}

#[tokio::test]
async fn certificate_assertion_ps256_x5t_s256_succeeds() {
    let f = Fixture::new().await;
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256(f.cert.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Ps256, f.cert.key()).unwrap();
    f.assert_ok(&assertion).await;
    // PS256 claimed but signed with PKCS#1 v1.5: the signature does not verify.
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
    f.assert_code(&assertion, 7_000_274).await;
}

#[tokio::test]
async fn unknown_thumbprint_is_700027() {
    let f = Fixture::new().await;
    let stranger = SigningKey::generate("unregistered").unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(stranger.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, stranger.key()).unwrap();
    f.assert_code(&assertion, 700_027).await;
    // x5t of the hex text instead of the raw digest (a classic bug) is not found either.
    let hex: String = openssl::sha::sha1(f.cert.cert_der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": crate::jwt::b64url(hex.as_bytes())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
    f.assert_code(&assertion, 700_027).await;
}

#[tokio::test]
async fn unknown_x5t_s256_is_700027_and_both_thumbprints_must_match() {
    let f = Fixture::new().await;
    let stranger = SigningKey::generate("unregistered").unwrap();
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256(stranger.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Ps256, f.cert.key()).unwrap();
    f.assert_code(&assertion, 700_027).await;
    // A right x5t with a wrong x5t#S256 names no registered certificate either.
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der()),
        "x5t#S256": x5t_s256(stranger.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
    f.assert_code(&assertion, 700_027).await;
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der()),
        "x5t#S256": x5t_s256(f.cert.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
    f.assert_ok(&assertion).await;
}

#[tokio::test]
async fn wrong_key_is_7000274() {
    let f = Fixture::new().await;
    let stranger = SigningKey::generate("unregistered").unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der())});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, stranger.key()).unwrap();
    f.assert_code(&assertion, 7_000_274).await;
}

#[tokio::test]
async fn expired_registered_certificate_is_1000502() {
    let f = Fixture::new().await;
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut builder = openssl::x509::X509::builder().unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "expired").unwrap();
    let name = name.build();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    let past = openssl::asn1::Asn1Time::from_unix(unix_now() - 86_400 * 10).unwrap();
    let yesterday = openssl::asn1::Asn1Time::from_unix(unix_now() - 86_400).unwrap();
    builder.set_not_before(&past).unwrap();
    builder.set_not_after(&yesterday).unwrap();
    builder
        .sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let der = builder.build().to_der().unwrap();
    f.sandbox
        .register_app(AppRegistration::new(CLIENT_ID, TENANT).with_certificate_der(der.clone()));
    let header = json!({"alg": "RS256", "x5t": x5t(&der)});
    let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, &key).unwrap();
    f.assert_code(&assertion, 1_000_502).await;
}

#[tokio::test]
async fn thumbprints_are_accepted_with_or_without_padding() {
    let f = Fixture::new().await;
    let der = f.cert.cert_der();
    // MSAL Python: base64.urlsafe_b64encode of the digest, padding kept.
    let sha1 = format!("{}=", x5t(der));
    let sha256 = format!("{}=", x5t_s256(der));
    assert_eq!(sha1.len(), 28);
    assert_eq!(sha256.len(), 44);
    let headers = [
        json!({"alg": "RS256", "typ": "JWT", "x5t": sha1}),
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": sha256}),
        json!({"alg": "PS256", "typ": "JWT", "x5t": sha1, "x5t#S256": sha256}),
        json!({"alg": "PS256", "typ": "JWT", "x5t": x5t(der), "x5t#S256": sha256}),
    ];
    for header in headers {
        f.assert_ok_case(
            &header.to_string(),
            &sign(&header, &f.claims(), f.cert.key()),
        )
        .await;
    }
}

#[tokio::test]
async fn unreadable_or_wrong_length_thumbprints_match_nothing() {
    let f = Fixture::new().await;
    let der = f.cert.cert_der();
    let sha1 = openssl::sha::sha1(der);
    let sha256 = openssl::sha::sha256(der);
    let cases = [
        ("x5t", json!("not base64url!")),
        // One `=` is canonical for 20 bytes; two is not.
        ("x5t", json!(format!("{}==", x5t(der)))),
        ("x5t", json!(b64url(&sha1[..19]))),
        ("x5t", json!(b64url(&[&sha1[..], &[0]].concat()))),
        ("x5t", json!(b64url(&sha256))),
        ("x5t#S256", json!(b64url(&sha1))),
        ("x5t#S256", json!(b64url(&sha256[..31]))),
        ("x5t", json!(42)),
        ("x5t", Value::Null),
    ];
    for (name, thumbprint) in cases {
        let header = json!({"alg": "RS256", "typ": "JWT", name: thumbprint});
        let assertion = sign(&header, &f.claims(), f.cert.key());
        f.assert_case(&header.to_string(), &assertion, 700_027)
            .await;
    }
    // Entra shows the thumbprint it looked for as hex digest bytes.
    let stranger = openssl::sha::sha1(b"stranger");
    let header = json!({"alg": "RS256", "x5t": format!("{}=", b64url(&stranger))});
    let reply = f.post(&sign(&header, &f.claims(), f.cert.key())).await;
    let hex: String = stranger.iter().map(|b| format!("{b:02X}")).collect();
    assert!(reply.text.contains(&format!("'{hex}'")), "{}", reply.text);
}

#[tokio::test]
async fn x5c_names_a_registered_certificate() {
    let f = Fixture::new().await;
    let other = SigningKey::generate("second registered").unwrap();
    f.sandbox.register_app(
        AppRegistration::new(CLIENT_ID, TENANT)
            .with_certificate_der(f.cert.cert_der())
            .with_certificate_der(other.cert_der()),
    );
    let der = f.cert.cert_der();
    let good = [
        json!({"alg": "RS256", "x5c": [STANDARD.encode(der)]}),
        // MSAL Python copies the PEM body, line breaks and all.
        json!({"alg": "RS256", "x5c": [pem_body(der, "\n")]}),
        json!({"alg": "RS256", "x5c": [format!("\r\n{}\r\n", pem_body(der, "\r\n"))]}),
        json!({"alg": "RS256", "x5c": [pem_body(der, " ")]}),
        json!({"alg": "RS256", "x5t": x5t(der), "x5c": [STANDARD.encode(der)]}),
        json!({"alg": "PS256", "x5t#S256": x5t_s256(der), "x5c": [pem_body(der, "\n")]}),
    ];
    for header in good {
        f.assert_ok_case(
            &header.to_string(),
            &sign(&header, &f.claims(), f.cert.key()),
        )
        .await;
    }
    // The thumbprint names another registered certificate than the x5c leaf.
    let header = json!({"alg": "RS256", "x5t": x5t(other.cert_der()),
        "x5c": [STANDARD.encode(der)]});
    let assertion = sign(&header, &f.claims(), f.cert.key());
    f.assert_case("x5t names another", &assertion, 700_027)
        .await;
    let assertion = sign(&header, &f.claims(), other.key());
    f.assert_case("x5t names another, its key", &assertion, 700_027)
        .await;
    // An unregistered leaf, even a well-formed one with its own valid signature.
    let stranger = SigningKey::generate("unregistered").unwrap();
    let header = json!({"alg": "RS256", "x5c": [STANDARD.encode(stranger.cert_der())]});
    let assertion = sign(&header, &f.claims(), stranger.key());
    f.assert_case("unregistered leaf", &assertion, 700_027)
        .await;
    // The registered leaf, signed with another key.
    let header = json!({"alg": "RS256", "x5c": [STANDARD.encode(der)]});
    let assertion = sign(&header, &f.claims(), stranger.key());
    f.assert_case("wrong key", &assertion, 7_000_274).await;
}

#[tokio::test]
async fn malformed_x5c_is_50027() {
    let f = Fixture::new().await;
    let der = f.cert.cert_der();
    let good = STANDARD.encode(der);
    let malformed = [
        json!(good),
        json!([]),
        json!([42]),
        json!([good, 42]),
        json!({"0": good}),
        json!(["!!not base64!!"]),
        json!([crate::jwt::b64url(der)]),
        json!([&good[..good.len() - 1]]),
        json!([STANDARD.encode(b"not a certificate")]),
        json!([STANDARD.encode([der, &[0][..]].concat())]),
        json!([good, STANDARD.encode(b"not a certificate")]),
    ];
    for x5c in malformed {
        let header = json!({"alg": "RS256", "x5t": x5t(der), "x5c": x5c});
        let assertion = sign(&header, &f.claims(), f.cert.key());
        f.assert_case(&x5c.to_string(), &assertion, 50027).await;
    }
}

#[tokio::test]
async fn trusted_subject_accepts_any_certificate_its_ca_issues() {
    let f = Fixture::new().await;
    let (from, to) = decade();
    let now = unix_now();
    let ca = issue("Contoso Root", None, true, from, to);
    let intermediate = issue("Contoso Issuing", Some(&ca), true, from, to);
    let leaf = issue("bot.contoso.com", Some(&ca), false, now - 60, now + 86_400);
    let renewed = issue("bot.contoso.com", Some(&ca), false, now - 60, now + 86_400);
    let via_intermediate = issue("bot.contoso.com", Some(&intermediate), false, from, to);
    f.sandbox.register_app(
        AppRegistration::new(CLIENT_ID, TENANT)
            .with_trusted_subject("CN=bot.contoso.com", ca.der()),
    );
    let assertion = |x5c: &[&Issued], signer: &Issued, thumbprint: bool| {
        let chain: Vec<String> = x5c.iter().map(|c| STANDARD.encode(c.der())).collect();
        let mut header = json!({"alg": "RS256", "typ": "JWT", "x5c": chain});
        if thumbprint {
            header["x5t"] = json!(x5t(&x5c[0].der()));
        }
        sign(&header, &f.claims(), &signer.key)
    };

    f.assert_ok_case("leaf", &assertion(&[&leaf], &leaf, false))
        .await;
    f.assert_ok_case("leaf + x5t", &assertion(&[&leaf], &leaf, true))
        .await;
    f.assert_ok_case("leaf, CA", &assertion(&[&leaf, &ca], &leaf, true))
        .await;
    f.assert_ok_case("renewed", &assertion(&[&renewed], &renewed, true))
        .await;
    let chain = [&via_intermediate, &intermediate];
    f.assert_ok_case("intermediate", &assertion(&chain, &via_intermediate, true))
        .await;
    let chain = [&via_intermediate, &intermediate, &ca];
    f.assert_ok_case("full chain", &assertion(&chain, &via_intermediate, true))
        .await;

    // Without x5c nothing shows the chain: the leaf is not registered.
    let header = json!({"alg": "RS256", "x5t": x5t(&leaf.der())});
    let only_x5t = sign(&header, &f.claims(), &leaf.key);
    f.assert_case("x5t only", &only_x5t, 700_027).await;
    let refused = [
        ("intermediate missing", vec![&via_intermediate]),
        ("wrong subject", vec![&intermediate]),
    ];
    for (case, chain) in refused {
        f.assert_case(case, &assertion(&chain, chain[0], true), 700_027)
            .await;
    }
    let self_signed = issue("bot.contoso.com", None, false, from, to);
    let other_ca = issue("Contoso Root", None, true, from, to);
    let foreign = issue("bot.contoso.com", Some(&other_ca), false, from, to);
    let not_yet = issue("bot.contoso.com", Some(&ca), false, now + 86_400, to);
    let old_ca = issue("Old Issuing", Some(&ca), true, from, now - 86_400);
    let under_expired = issue("bot.contoso.com", Some(&old_ca), false, from, to);
    let not_a_ca = issue("Contoso Web Server", Some(&ca), false, from, to);
    let under_not_a_ca = issue("bot.contoso.com", Some(&not_a_ca), false, from, to);
    let refused = [
        ("self-signed", vec![&self_signed]),
        ("other CA of the same name", vec![&foreign, &other_ca]),
        ("not yet valid", vec![&not_yet]),
        ("expired intermediate", vec![&under_expired, &old_ca]),
        ("issued by a non-CA", vec![&under_not_a_ca, &not_a_ca]),
    ];
    for (case, chain) in refused {
        f.assert_case(case, &assertion(&chain, chain[0], false), 700_027)
            .await;
    }
    // Trusted, but signed with another key.
    f.assert_case("wrong key", &assertion(&[&leaf], &renewed, true), 7_000_274)
        .await;
    // Trusted, but past its end date: as for a registered certificate.
    let expired = issue("bot.contoso.com", Some(&ca), false, from, now - 60);
    f.assert_case(
        "expired",
        &assertion(&[&expired], &expired, true),
        1_000_502,
    )
    .await;
    // The thumbprint must name the x5c leaf.
    let mut header = json!({"alg": "RS256", "x5c": [STANDARD.encode(leaf.der())]});
    header["x5t"] = json!(x5t(&renewed.der()));
    let mismatch = sign(&header, &f.claims(), &leaf.key);
    f.assert_case("x5t names another", &mismatch, 700_027).await;
}

#[tokio::test]
async fn trusted_subject_compares_rfc_4514_names() {
    let f = Fixture::new().await;
    // fixtures/certs: leaf.pem has -subj "/CN=botauth fixture leaf/O=botauth tests", by ca.pem.
    let chain = X509::stack_from_pem(&fixture_file("chain.pem")).unwrap();
    let key = PKey::private_key_from_pem(&fixture_file("leaf.key")).unwrap();
    let ca = X509::from_pem(&fixture_file("ca.pem"))
        .unwrap()
        .to_der()
        .unwrap();
    let x5c: Vec<String> = chain
        .iter()
        .map(|c| pem_body(&c.to_der().unwrap(), "\n"))
        .collect();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5c": x5c});
    let cases = [
        ("O=botauth tests,CN=botauth fixture leaf", true),
        ("O=botauth tests, CN=botauth fixture leaf", true),
        (" o = BOTAUTH Tests ,  cn=botauth fixture leaf ", true),
        ("O=botauth\\20tests,CN=botauth fixture leaf", true),
        (
            "2.5.4.10=botauth tests,OID.2.5.4.3=botauth fixture leaf",
            true,
        ),
        // The certificate's own (DER) order is not RFC 4514's.
        ("CN=botauth fixture leaf, O=botauth tests", false),
        ("CN=botauth fixture leaf", false),
        ("O=botauth tests,CN=botauth fixture", false),
        ("O=botauth tests,CN=botauth fixture leaf,C=US", false),
        ("O=botauth tests+CN=botauth fixture leaf", false),
        ("", false),
    ];
    for (subject, accepted) in cases {
        f.sandbox.register_app(
            AppRegistration::new(CLIENT_ID, TENANT).with_trusted_subject(subject, ca.clone()),
        );
        let assertion = sign(&header, &f.claims(), &key);
        if accepted {
            f.assert_ok_case(subject, &assertion).await;
        } else {
            f.assert_case(subject, &assertion, 700_027).await;
        }
    }
    // The trusted subject under another CA does not vouch for this leaf.
    let other_ca = X509::from_pem(&fixture_file("rsa2048.pem"))
        .unwrap()
        .to_der()
        .unwrap();
    f.sandbox.register_app(
        AppRegistration::new(CLIENT_ID, TENANT)
            .with_trusted_subject("O=botauth tests,CN=botauth fixture leaf", other_ca),
    );
    f.assert_case("other CA", &sign(&header, &f.claims(), &key), 700_027)
        .await;
}
