#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client_secret;

pub use client_secret::{ClientSecretCredential, ClientSecretCredentialBuilder};
