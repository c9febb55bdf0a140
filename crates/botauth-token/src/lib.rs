#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod manager;

pub use client::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};
pub use manager::{ManagerOptions, TokenManager, TokenManagerBuilder, TokenSource};
