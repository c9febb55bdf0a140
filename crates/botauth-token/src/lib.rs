#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod forward;
mod manager;

pub use client::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};
#[doc(hidden)]
pub use forward::__private;
pub use manager::{ManagerOptions, TokenManager, TokenManagerBuilder, TokenSource};
