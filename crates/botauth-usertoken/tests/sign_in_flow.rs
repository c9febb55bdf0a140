//! Every sign-in activity and its exact answer, against the sandbox's Token Service.

mod common;

use std::time::Duration;

use botauth_sandbox::DEMO_CLIENT_ID;
use botauth_usertoken::{Begin, InvokeResponse, SignInFlow, SignInOutcome};
use common::{CONNECTION, Harness};
use serde_json::{Value, json};

fn flow(h: &Harness) -> SignInFlow {
    SignInFlow::builder(h.client_with_clock(), CONNECTION).build()
}

fn status(response: &Option<InvokeResponse>) -> u16 {
    response.as_ref().expect("an invoke answer").status
}

async fn card(h: &Harness, flow: &SignInFlow) -> Value {
    match flow.begin(&h.message("whoami").await).await.expect("begin") {
        Begin::Card(card) => card,
        other => panic!("not signed in yet: {other:?}"),
    }
}

#[tokio::test]
async fn begin_sends_an_oauth_card_then_the_magic_code_in_text_signs_in() {
    let h = Harness::start().await;
    let flow = flow(&h);
    let card = card(&h, &flow).await;
    let attachment = &card["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.oauth"
    );
    assert_eq!(attachment["content"]["connectionName"], CONNECTION);
    let link = attachment["content"]["buttons"][0]["value"]
        .as_str()
        .unwrap();
    assert_eq!(
        attachment["content"]["tokenExchangeResource"]["uri"],
        format!("api://botid-{DEMO_CLIENT_ID}")
    );

    // Text that is not exactly six digits is the handler's own, even with a code inside.
    let code = h.sandbox.follow_sign_in_link(link).await.unwrap();
    let step = flow
        .handle(&h.message(&format!("my code is {code}")).await)
        .await;
    assert!(matches!(step.outcome, SignInOutcome::NotSignIn), "{step:?}");
    // A wrong code: refused, the flow goes on.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let step = flow.handle(&h.message(wrong).await).await;
    assert!(
        matches!(step.outcome, SignInOutcome::CodeRefused),
        "{step:?}"
    );
    assert!(step.response.is_none());
    let step = flow.handle(&h.message(&format!(" {code}\n")).await).await;
    let SignInOutcome::SignedIn(token) = step.outcome else {
        panic!("{step:?}")
    };
    assert_eq!(token.connection_name, CONNECTION);

    // Signed in: begin answers the token; a code typed now is not a sign-in.
    assert!(matches!(
        flow.begin(&h.message("whoami").await).await.unwrap(),
        Begin::SignedIn(_)
    ));
    let step = flow.handle(&h.message("123456").await).await;
    assert!(matches!(step.outcome, SignInOutcome::NotSignIn), "{step:?}");

    // Sign out: the next begin sends a card again.
    flow.sign_out(&h.message("logout").await).await.unwrap();
    assert!(matches!(
        flow.begin(&h.message("whoami").await).await.unwrap(),
        Begin::Card(_)
    ));
}

#[tokio::test]
async fn verify_state_answers_200_404_500_and_cancelled() {
    let h = Harness::start().await;
    let flow = flow(&h);
    let card = card(&h, &flow).await;
    let link = card["attachments"][0]["content"]["buttons"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = h.sandbox.follow_sign_in_link(&link).await.unwrap();
    let invoke = |state: &str| h.sandbox.verify_state_invoke(DEMO_CLIENT_ID, state);

    // 404: a code the service refuses (Teams does not retry).
    let step = flow.handle(&h.verified(&invoke("999999x")).await).await;
    assert_eq!(status(&step.response), 404);
    assert!(step.response.as_ref().unwrap().body.is_none());
    assert!(matches!(step.outcome, SignInOutcome::CodeRefused));

    // 500: the service failed (Teams resends).
    h.sandbox.inject_token_service_status(502, None, 1);
    let step = flow.handle(&h.verified(&invoke(&code)).await).await;
    assert_eq!(status(&step.response), 500);
    assert!(matches!(step.outcome, SignInOutcome::Error(_)));

    // 200: the token.
    let step = flow.handle(&h.verified(&invoke(&code)).await).await;
    assert_eq!(status(&step.response), 200);
    assert!(
        matches!(step.outcome, SignInOutcome::SignedIn(_)),
        "{step:?}"
    );

    // CancelledByUser: 200 and the flow ends.
    let step = flow
        .handle(&h.verified(&invoke("CancelledByUser")).await)
        .await;
    assert_eq!(status(&step.response), 200);
    assert!(matches!(step.outcome, SignInOutcome::Cancelled));
}

#[tokio::test]
async fn token_exchange_answers_400_200_deduplicated_412_and_400_on_500() {
    let h = Harness::start().await;
    let flow = flow(&h);
    let card = card(&h, &flow).await;
    let id = card["attachments"][0]["content"]["tokenExchangeResource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 400: no value; another connection.
    let bare = h
        .sandbox
        .sign_in_invoke(DEMO_CLIENT_ID, "signin/tokenExchange", json!({}));
    let step = flow.handle(&h.verified(&bare).await).await;
    let response = step.response.unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(
        response.body.as_ref().unwrap()["connectionName"],
        CONNECTION
    );
    assert!(
        response.body.unwrap()["failureDetail"]
            .as_str()
            .unwrap()
            .contains("missing")
    );
    let other = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, "other", &id);
    let step = flow.handle(&h.verified(&other).await).await;
    assert_eq!(status(&step.response), 400);

    // 412 with failureDetail while consent is needed, for every duplicate.
    h.sandbox.set_consent_required(true);
    for _ in 0..2 {
        let invoke = h
            .sandbox
            .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
        let step = flow.handle(&h.verified(&invoke).await).await;
        let response = step.response.unwrap();
        assert_eq!(response.status, 412);
        assert_eq!(response.body.as_ref().unwrap()["id"], id.as_str());
        assert!(response.body.unwrap()["failureDetail"].is_string());
        assert!(matches!(step.outcome, SignInOutcome::ConsentRequired));
    }
    h.sandbox.set_consent_required(false);

    // 200 {id, connectionName} for the first; 200 with an empty body for its duplicates.
    let first = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let second = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let (a, b) = (h.verified(&first).await, h.verified(&second).await);
    let (a, b) = tokio::join!(flow.handle(&a), flow.handle(&b));
    let mut steps = [a, b];
    steps.sort_by_key(|s| matches!(s.outcome, SignInOutcome::Deduplicated));
    let [won, lost] = steps;
    assert_eq!(
        won.response.as_ref().unwrap().body,
        Some(json!({"id": id, "connectionName": CONNECTION}))
    );
    assert_eq!(status(&won.response), 200);
    assert!(matches!(won.outcome, SignInOutcome::SignedIn(_)), "{won:?}");
    assert_eq!(status(&lost.response), 200);
    assert!(lost.response.unwrap().body.is_none());
    assert!(matches!(lost.outcome, SignInOutcome::Deduplicated));

    // A service 500 (misconfigured connection): 400, so Teams stops retrying.
    h.sandbox.inject_token_service_status(500, None, 1);
    let invoke = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, "another-id");
    let step = flow.handle(&h.verified(&invoke).await).await;
    assert_eq!(status(&step.response), 400);
    assert!(matches!(step.outcome, SignInOutcome::Error(_)));
}

#[tokio::test]
async fn failure_invokes_tokens_response_events_and_the_timeout() {
    let h = Harness::start().await;
    let flow = flow(&h);
    card(&h, &flow).await;

    let failure = h.sandbox.sign_in_invoke(
        DEMO_CLIENT_ID,
        "signin/failure",
        json!({"code": "resourcematchfailed", "message": "Resource match failed"}),
    );
    let step = flow.handle(&h.verified(&failure).await).await;
    assert_eq!(status(&step.response), 200);
    assert!(step.response.as_ref().unwrap().body.is_none());
    let SignInOutcome::Failed { code, .. } = step.outcome else {
        panic!("{step:?}")
    };
    assert_eq!(code, "resourcematchfailed");

    // tokens/response: the token from a Direct Line / Web Chat event.
    let mut event = h.sandbox.channel_activity(DEMO_CLIENT_ID, "");
    event["type"] = json!("event");
    event["name"] = json!("tokens/response");
    event["value"] = json!({"connectionName": CONNECTION, "token": "t0k", "channelId": "msteams"});
    let step = flow.handle(&h.verified(&event).await).await;
    assert!(step.response.is_none());
    assert!(
        matches!(step.outcome, SignInOutcome::SignedIn(_)),
        "{step:?}"
    );
    event["value"]["connectionName"] = json!("other");
    let step = flow.handle(&h.verified(&event).await).await;
    assert!(matches!(step.outcome, SignInOutcome::NotSignIn), "{step:?}");

    // Timed out: 16 minutes after the card, a code is no sign-in and verifyState gets 404.
    card(&h, &flow).await;
    h.clock.advance(Duration::from_secs(16 * 60));
    let step = flow.handle(&h.message("123456").await).await;
    assert!(matches!(step.outcome, SignInOutcome::TimedOut), "{step:?}");
    card(&h, &flow).await;
    h.clock.advance(Duration::from_secs(16 * 60));
    let verify = h.sandbox.verify_state_invoke(DEMO_CLIENT_ID, "123456");
    let step = flow.handle(&h.verified(&verify).await).await;
    assert_eq!(status(&step.response), 404);
    assert!(matches!(step.outcome, SignInOutcome::TimedOut));

    // Other invokes are not the flow's (the handler answers them, or 501).
    let other = h
        .sandbox
        .sign_in_invoke(DEMO_CLIENT_ID, "composeExtension/query", json!({}));
    let step = flow.handle(&h.verified(&other).await).await;
    assert!(step.response.is_none());
    assert!(matches!(step.outcome, SignInOutcome::NotSignIn));
}
