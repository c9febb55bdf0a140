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

pub use client::{UserTokenClient, UserTokenClientBuilder};
pub use context::SignInContext;
pub use error::{ServiceErrorBody, UserTokenError, UserTokenErrorKind};
pub use flow::{
    Begin, InvokeResponse, SignInFlow, SignInFlowBuilder, SignInOutcome, SignInStep, magic_code,
};
#[cfg(feature = "redis")]
pub use redis_store::RedisExchangeStore;
pub use store::{ExchangeStore, MemoryExchangeStore};
pub use types::{SignInResource, TokenExchangeResource, TokenResponse, TokenStatus};
