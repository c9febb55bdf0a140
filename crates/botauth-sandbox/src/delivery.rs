//! What a bot answered when the sandbox delivered it an activity, as the Bot Service or the
//! Token Service's channel does.

/// A bot's answer to [`Sandbox::deliver_activity`](crate::Sandbox::deliver_activity).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Delivery {
    /// HTTP status.
    pub status: u16,
    /// The body (invalid UTF-8 replaced with U+FFFD).
    pub body: String,
    /// The `WWW-Authenticate` header, when the bot sent one (and it is visible ASCII).
    pub www_authenticate: Option<String>,
}
