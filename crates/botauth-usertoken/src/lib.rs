#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cache;
mod card;
mod client;
mod context;
mod endpoint;
mod error;
mod flow;
#[cfg(feature = "redis")]
mod redis_store;
mod store;
mod types;

pub use card::{
    OAUTH_CARD_CONTENT_TYPE, SIGNIN_CARD_CONTENT_TYPE, sign_in_attachment, supports_oauth_card,
};
pub use client::{UserTokenClient, UserTokenClientBuilder};
pub use context::SignInContext;
pub use endpoint::{
    CHINA_TOKEN_SERVICE_URL, PUBLIC_TOKEN_SERVICE_URL, REGIONAL_TOKEN_SERVICE_URLS,
    US_GOV_TOKEN_SERVICE_URL, default_token_service_url, token_service_url,
};
pub use error::{ServiceErrorBody, UserTokenError, UserTokenErrorKind};
pub use flow::{
    Begin, CANCELLED_BY_USER, DEFAULT_FLOW_TIMEOUT, InvokeResponse, SignInFlow, SignInFlowBuilder,
    SignInOutcome, SignInStep, magic_code,
};
#[cfg(feature = "redis")]
pub use redis_store::RedisExchangeStore;
pub use store::{ExchangeStore, MemoryExchangeStore};
pub use types::{SignInResource, TokenExchangeResource, TokenResponse, TokenStatus};
