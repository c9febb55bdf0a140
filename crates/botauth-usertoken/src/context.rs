//! Who is signing in, taken from a verified activity only (docs/protocol.md §8, security), and
//! the `state` the sign-in link carries.

use base64::Engine as _;
use botauth_validator::VerifiedActivity;
use serde_json::{Map, Value, json};

use crate::error::UserTokenError;

/// The user, channel and conversation a Token Service call is about, taken from an activity the
/// validator accepted. There is no other constructor: a request whose channel JWT did not verify
/// cannot ask the Token Service for anyone's token, and a handler cannot put another user's id in
/// by mistake.
#[derive(Clone)]
pub struct SignInContext {
    user_id: String,
    channel_id: String,
    conversation_id: String,
    /// The bot's app id: the verified token's `aud`.
    app_id: String,
    /// The ConversationReference of the activity, for `state`.
    reference: Value,
    relates_to: Value,
}

impl std::fmt::Debug for SignInContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInContext")
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

/// The largest id accepted from an activity (real ones are a few hundred bytes).
const MAX_ID_BYTES: usize = 4096;

fn id_at<'a>(
    activity: &'a Value,
    pointer: &str,
    what: &'static str,
) -> Result<&'a str, UserTokenError> {
    let id = activity
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| UserTokenError::invalid(what, format!("the activity has no `{pointer}`")))?;
    if id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(UserTokenError::invalid(
            what,
            "is longer than 4096 bytes or holds control characters",
        ));
    }
    Ok(id)
}

impl SignInContext {
    /// The context of a verified activity: `from.id` is the user, `channelId` the channel,
    /// `conversation.id` the conversation, and the token's `aud` the bot's app id.
    ///
    /// # Errors
    ///
    /// A [`UserTokenError`] of kind
    /// [`InvalidArgument`](crate::UserTokenErrorKind::InvalidArgument) when the activity lacks one of them.
    pub fn from_verified(verified: &VerifiedActivity) -> Result<Self, UserTokenError> {
        let activity = verified.activity();
        let user_id = id_at(activity, "/from/id", "user id")?.to_owned();
        let channel_id = id_at(activity, "/channelId", "channel id")?.to_owned();
        let conversation_id = id_at(activity, "/conversation/id", "conversation id")?.to_owned();
        let app_id = verified.claims().audience().to_owned();
        let mut reference = Map::new();
        let mut copy = |to: &str, from: &str| {
            if let Some(v) = activity.get(from).filter(|v| !v.is_null()) {
                reference.insert(to.to_owned(), v.clone());
            }
        };
        copy("activityId", "id");
        copy("user", "from");
        copy("bot", "recipient");
        copy("conversation", "conversation");
        copy("channelId", "channelId");
        copy("locale", "locale");
        copy("serviceUrl", "serviceUrl");
        Ok(SignInContext {
            user_id,
            channel_id,
            conversation_id,
            app_id,
            reference: Value::Object(reference),
            relates_to: activity.get("relatesTo").cloned().unwrap_or(Value::Null),
        })
    }

    /// The user's channel id (`from.id`).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The channel (`msteams`, `webchat`, …).
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The conversation id.
    pub fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    /// The bot's app id (the verified token's audience).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The sign-in `state` the SDKs send to `GetSignInResource`: standard padded base64 of
    /// `{connectionName, conversation, relatesTo, msAppId}` (docs/protocol.md §8, `state`).
    pub fn sign_in_state(&self, connection_name: &str) -> String {
        let state = json!({
            "connectionName": connection_name,
            "conversation": self.reference,
            "relatesTo": self.relates_to,
            "msAppId": self.app_id,
        });
        base64::engine::general_purpose::STANDARD.encode(state.to_string())
    }
}
