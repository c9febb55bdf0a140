#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod bearer;
mod client;
mod options;
mod response;
mod settings;

pub use bearer::{UNSENDABLE_TOKEN, check_access_token, is_sendable_token, is_sendable_token_type};
pub use client::{
    CLIENT_SKU, CLIENT_VERSION, build_client, build_client_with_env, https_proxy_from,
};
pub use options::HttpOptions;
pub use response::{clean_text, display_endpoint, read_body, retry_after, transport_error};
pub use settings::ClientSettings;
