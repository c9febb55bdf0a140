//! The settings that every credential built on
//! [`ClientCredentialsClient`](crate::ClientCredentialsClient) passes through to its
//! [`ClientCredentialsClientBuilder`](crate::ClientCredentialsClientBuilder).

/// Paths the exported macro names, so that a crate invoking it needs no imports of its own.
#[doc(hidden)]
pub mod __private {
    pub use botauth_core::{Clock, Cloud};
    pub use botauth_http::HttpOptions;
    pub use reqwest::Client as HttpClient;
}

/// Defines a credential builder's `cloud`, `authority_host`, `http_client`, `http_options` and
/// `clock` setters, each forwarding to the [`ClientCredentialsClientBuilder`] held in the named
/// field.
///
/// The client-secret and certificate credentials (and any credential that wraps the
/// client-credentials client) offer the same settings under the same names and docs; this keeps
/// one definition of them, so that a setting added to the client reaches every credential. Only
/// the `clock` doc is given by the caller, because what the client's clock does not cover differs
/// per credential (the certificate's assertion has a clock of its own).
///
/// Invoke it inside the credential builder's `impl` block:
///
/// ```
/// use botauth_token::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};
///
/// #[derive(Debug)]
/// pub struct MyCredentialBuilder {
///     client: ClientCredentialsClientBuilder,
/// }
///
/// impl MyCredentialBuilder {
///     botauth_token::forward_client_builder_settings! {
///         client;
///         /// Uses this clock for expiry times (tests).
///         clock
///     }
/// }
///
/// let builder = MyCredentialBuilder {
///     client: ClientCredentialsClient::builder(
///         "https://login.microsoftonline.com",
///         "11111111-2222-3333-4444-555555555555",
///         "00000000-0000-0000-0000-00000000b07a",
///         ClientAuth::Secret(botauth_core::Secret::new("abc~def")),
///     ),
/// }
/// .cloud(&botauth_core::Cloud::UsGov);
/// let client = builder.client.build().unwrap();
/// assert!(client.token_endpoint(None).starts_with("https://login.microsoftonline.us/"));
/// ```
///
/// [`ClientCredentialsClientBuilder`]: crate::ClientCredentialsClientBuilder
#[doc(hidden)]
#[macro_export]
macro_rules! forward_client_builder_settings {
    ($field:ident; $(#[$clock_doc:meta])* clock $(,)?) => {
        /// Uses the authority host of `cloud` (default: public cloud).
        pub fn cloud(self, cloud: &$crate::__private::Cloud) -> Self {
            self.authority_host(cloud.authority_host())
        }

        /// Uses this authority host (`https://…`, or `http://` on loopback for local
        /// development).
        pub fn authority_host(mut self, authority_host: impl Into<String>) -> Self {
            self.$field = self.$field.authority_host(authority_host);
            self
        }

        /// Uses this HTTP client (proxy, custom roots). It should not follow redirects.
        pub fn http_client(mut self, client: $crate::__private::HttpClient) -> Self {
            self.$field = self.$field.http_client(client);
            self
        }

        /// Timeouts and size limits.
        pub fn http_options(mut self, options: $crate::__private::HttpOptions) -> Self {
            self.$field = self.$field.http_options(options);
            self
        }

        $(#[$clock_doc])*
        pub fn clock(
            mut self,
            clock: ::std::sync::Arc<dyn $crate::__private::Clock>,
        ) -> Self {
            self.$field = self.$field.clock(clock);
            self
        }
    };
}
