#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod activity;
mod builder;
mod check;
mod claims;
pub mod dangerous;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod json;
mod jwk;
mod jwt;
mod keys;
mod layer;
mod memo;
mod profile;
mod rules;
mod service;
mod telemetry;
mod validator;
mod verified_cache;

pub use activity::VerifiedActivity;
pub use builder::ValidatorBuilder;
pub use check::ClaimsRejection;
pub use claims::BotClaims;
pub use error::{Error, ErrorKind};
#[cfg(feature = "axum")]
pub use extract::MissingBotAuthLayer;
pub use future::ResponseFuture;
pub use jwt::Algorithm;
pub use layer::{BotAuthLayer, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES};
pub use profile::{
    AllowedCallers, BotServiceProfile, EmulatorProfile, EntraProfile, ProfileKind, SkillProfile,
    TrustProfile,
};
pub use service::BotAuthService;
pub use validator::{ActivityInfo, Validator};
pub use verified_cache::VerifiedToken;
