//! Where an activity goes: the service URL, the conversation, the activity replied to, and whose
//! token it carries.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ConnectorError, Repr};

/// Whose audience the outbound token has.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Audience {
    /// The Bot Connector of the configured cloud (docs/protocol.md §2 scope table). Replies to channels.
    #[default]
    BotConnector,
    /// Another bot, by its app id: a skill replying to the bot that called it gets a token whose
    /// scope is `{app id}/.default`.
    Skill(String),
}

/// Where to send an activity: `POST {serviceUrl}v3/conversations/{conversationId}/activities`
/// (send to the conversation) or `…/activities/{activityId}` (reply to that activity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub(crate) service_url: String,
    pub(crate) conversation_id: String,
    pub(crate) reply_to_id: Option<String>,
    pub(crate) audience: Audience,
    pub(crate) inbound_audience: Option<String>,
}

impl Target {
    /// A reply to activity `activity_id` of conversation `conversation_id`.
    pub fn reply_to(
        service_url: impl Into<String>,
        conversation_id: impl Into<String>,
        activity_id: impl Into<String>,
    ) -> Self {
        Target {
            service_url: service_url.into(),
            conversation_id: conversation_id.into(),
            reply_to_id: Some(activity_id.into()),
            audience: Audience::BotConnector,
            inbound_audience: None,
        }
    }

    /// A new activity in conversation `conversation_id`.
    pub fn conversation(
        service_url: impl Into<String>,
        conversation_id: impl Into<String>,
    ) -> Self {
        Target {
            service_url: service_url.into(),
            conversation_id: conversation_id.into(),
            reply_to_id: None,
            audience: Audience::BotConnector,
            inbound_audience: None,
        }
    }

    /// The reply target of an incoming activity: its `serviceUrl`, `conversation.id` and `id`
    /// (a send to the conversation when the activity has no `id`).
    ///
    /// # Errors
    ///
    /// [`ConnectorErrorKind::InvalidArgument`](crate::ConnectorErrorKind::InvalidArgument) when `serviceUrl` or `conversation.id` is missing.
    pub fn reply_to_activity(incoming: &Value) -> Result<Self, ConnectorError> {
        let service_url = str_at(incoming, "/serviceUrl")
            .ok_or_else(|| invalid("activity", "the incoming activity has no `serviceUrl`"))?;
        let conversation = str_at(incoming, "/conversation/id")
            .ok_or_else(|| invalid("activity", "the incoming activity has no `conversation.id`"))?;
        Ok(match str_at(incoming, "/id") {
            Some(id) => Target::reply_to(service_url, conversation, id),
            None => Target::conversation(service_url, conversation),
        })
    }

    /// The token's audience (default: the Bot Connector).
    #[must_use]
    pub fn audience(mut self, audience: Audience) -> Self {
        self.audience = audience;
        self
    }

    /// The audience of the inbound token this call answers (its `aud`, or `appid` when it has no
    /// `aud`): `ConnectionsMap` rules with an `Audience` compare it, case-insensitively. Replies
    /// through `ConnectorClient::reply_to_verified` (feature `validator`) set it from the
    /// verified claims; a proactive message has none.
    #[must_use]
    pub fn inbound_audience(mut self, audience: impl Into<String>) -> Self {
        self.inbound_audience = Some(audience.into());
        self
    }

    /// The path below the service URL, ids percent-encoded as `encodeURIComponent` does (Teams
    /// conversation ids carry `:`, `@`, `;` and `=`).
    pub(crate) fn path(&self) -> Result<String, ConnectorError> {
        let conversation = encode_id("conversation id", &self.conversation_id)?;
        Ok(match &self.reply_to_id {
            Some(id) => format!(
                "v3/conversations/{conversation}/activities/{}",
                encode_id("activity id", id)?
            ),
            None => format!("v3/conversations/{conversation}/activities"),
        })
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn invalid(what: &'static str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::from(Repr::InvalidArgument {
        what,
        message: message.into(),
    })
}

/// Ids longer than this are refused (real ones are a few hundred bytes).
const MAX_ID_BYTES: usize = 4096;

fn encode_id(what: &'static str, id: &str) -> Result<String, ConnectorError> {
    if id.is_empty() {
        return Err(invalid(what, "is empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(invalid(
            what,
            format!("is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    // `.` and `..` are unreserved and would be resolved as path segments, walking out of
    // `conversations/`.
    if id == "." || id == ".." {
        return Err(invalid(what, "is a dot segment"));
    }
    let mut out = String::with_capacity(id.len() * 3);
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

/// The Connector's answer to a sent activity: `{"id": "…"}`. Some channels answer with an empty
/// body, so the id is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct ResourceResponse {
    /// The id the channel gave the new activity.
    #[serde(default)]
    pub id: Option<String>,
}

/// A message activity replying to `incoming` with `text`, addressed as the Bot Framework SDKs
/// address replies: `from` is the incoming `recipient` (the bot), `recipient` the incoming `from`,
/// and `conversation`, `channelId`, `serviceUrl`, `locale` and `replyToId` are copied.
///
/// ```
/// use serde_json::json;
/// let incoming = json!({
///     "type": "message", "id": "1", "text": "hi", "channelId": "msteams",
///     "serviceUrl": "https://smba.trafficmanager.net/teams/",
///     "from": {"id": "29:user"}, "recipient": {"id": "28:bot"},
///     "conversation": {"id": "a:conv"}
/// });
/// let reply = botauth_connector::reply_activity(&incoming, "echo: hi");
/// assert_eq!(reply["text"], "echo: hi");
/// assert_eq!(reply["from"]["id"], "28:bot");
/// assert_eq!(reply["recipient"]["id"], "29:user");
/// assert_eq!(reply["replyToId"], "1");
/// ```
pub fn reply_activity(incoming: &Value, text: &str) -> Value {
    let mut reply = Map::new();
    reply.insert("type".into(), Value::from("message"));
    reply.insert("text".into(), Value::from(text));
    address_reply(incoming, Value::Object(reply))
}

/// Fills the addressing fields of `reply` from `incoming` (see [`reply_activity`]); fields the
/// reply already has are kept. A `reply` that is not a JSON object is returned unchanged.
pub(crate) fn address_reply(incoming: &Value, mut reply: Value) -> Value {
    let Some(out) = reply.as_object_mut() else {
        return reply;
    };
    let copy = [
        ("from", "/recipient"),
        ("recipient", "/from"),
        ("conversation", "/conversation"),
        ("channelId", "/channelId"),
        ("serviceUrl", "/serviceUrl"),
        ("locale", "/locale"),
        ("replyToId", "/id"),
    ];
    for (field, pointer) in copy {
        if !out.contains_key(field) {
            if let Some(value) = incoming.pointer(pointer).filter(|v| !v.is_null()) {
                out.insert(field.into(), value.clone());
            }
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectorErrorKind;
    use serde_json::json;

    #[test]
    fn ids_are_percent_encoded_like_encode_uri_component() {
        let t = Target::reply_to("https://x/", "19:abc@thread.v2;messageid=42", "1/2?3#4 5%");
        assert_eq!(
            t.path().unwrap(),
            "v3/conversations/19%3Aabc%40thread.v2%3Bmessageid%3D42/activities/1%2F2%3F3%234%205%25"
        );
        let t = Target::conversation("https://x/", "a:1Xyz-_.~é");
        assert_eq!(
            t.path().unwrap(),
            "v3/conversations/a%3A1Xyz-_.~%C3%A9/activities"
        );
    }

    #[test]
    fn bad_ids_are_refused_before_sending() {
        for (conversation, activity) in [
            ("", Some("1")),
            ("..", None),
            (".", None),
            ("a:1", Some("")),
            ("a:1", Some("..")),
        ] {
            let t = match activity {
                Some(id) => Target::reply_to("https://x/", conversation, id),
                None => Target::conversation("https://x/", conversation),
            };
            let err = t.path().unwrap_err();
            assert_eq!(err.kind(), ConnectorErrorKind::InvalidArgument, "{t:?}");
        }
        let long = "a".repeat(MAX_ID_BYTES + 1);
        assert_eq!(
            Target::conversation("https://x/", long)
                .path()
                .unwrap_err()
                .kind(),
            ConnectorErrorKind::InvalidArgument
        );
    }

    #[test]
    fn reply_target_from_an_activity() {
        let incoming = json!({
            "id": "act-1", "serviceUrl": "https://smba.trafficmanager.net/teams/",
            "conversation": {"id": "a:conv"}
        });
        let t = Target::reply_to_activity(&incoming).unwrap();
        assert_eq!(
            (
                t.service_url.as_str(),
                t.conversation_id.as_str(),
                t.reply_to_id.as_deref()
            ),
            (
                "https://smba.trafficmanager.net/teams/",
                "a:conv",
                Some("act-1")
            )
        );
        let mut no_id = incoming.clone();
        no_id.as_object_mut().unwrap().remove("id");
        assert_eq!(Target::reply_to_activity(&no_id).unwrap().reply_to_id, None);
        for missing in ["serviceUrl", "conversation"] {
            let mut v = incoming.clone();
            v.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                Target::reply_to_activity(&v).unwrap_err().kind(),
                ConnectorErrorKind::InvalidArgument
            );
        }
    }

    #[test]
    fn replies_are_addressed_back() {
        let incoming = json!({
            "type": "message", "id": "7", "channelId": "msteams", "locale": "en-GB",
            "serviceUrl": "https://smba.trafficmanager.net/teams/",
            "from": {"id": "29:u", "name": "U"}, "recipient": {"id": "28:b", "name": "B"},
            "conversation": {"id": "a:c"}
        });
        let reply = reply_activity(&incoming, "echo: hi");
        assert_eq!(
            reply,
            json!({
                "type": "message", "text": "echo: hi", "replyToId": "7", "channelId": "msteams",
                "locale": "en-GB", "serviceUrl": "https://smba.trafficmanager.net/teams/",
                "from": {"id": "28:b", "name": "B"}, "recipient": {"id": "29:u", "name": "U"},
                "conversation": {"id": "a:c"}
            })
        );
        // Fields the caller set are kept.
        let custom = address_reply(&incoming, json!({"type": "typing", "from": {"id": "x"}}));
        assert_eq!(custom["from"]["id"], "x");
        assert_eq!(custom["recipient"]["id"], "29:u");
        assert_eq!(address_reply(&incoming, json!("text")), json!("text"));
    }
}
