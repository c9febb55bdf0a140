//! The log-leak check, one program: every scenario below runs a full flow with every `tracing`
//! event of every crate captured at TRACE level into one buffer (docs/security.md, "Secrets"),
//! then checks that the events it must have logged are there and that no secret, token, part of
//! a token, assertion, code or link it handled is. The scenarios share the capture, so each also
//! checks what the others logged while they ran.

mod certificate;
mod identity;
mod secret;
mod two_way;
mod user_token;
mod user_token_push;
mod validator;
