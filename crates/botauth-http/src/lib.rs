#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod options;
mod settings;

#[doc(hidden)]
pub mod internal;

pub use client::build_client;
pub use options::HttpOptions;
pub use settings::ClientSettings;
