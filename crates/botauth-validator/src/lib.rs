#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod claims;
mod error;
mod keys;
mod profile;
mod rules;
mod token;
mod validator;
mod verified;

pub use claims::BotClaims;
pub use error::{Error, ErrorKind, Result};
pub use profile::{
    AllowedCallers, BOT_FRAMEWORK_TENANTS, BotServiceProfile, EmulatorProfile, EntraProfile,
    ProfileKind, SkillProfile,
};
pub use token::Algorithm;
pub use validator::{ActivityInfo, Validator, ValidatorBuilder};
