#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
pub mod http;
mod manager;

pub use client::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};
pub use manager::{ManagerOptions, TokenManager, TokenManagerBuilder, TokenSource};
