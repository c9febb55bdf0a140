//! https for the sandbox: a local certificate authority kept in a state directory, the server
//! certificate it issues for the loopback names at every start, and the listener that serves
//! https and plain http on one port.
//!
//! Why a CA and not a self-signed server certificate: Microsoft's clients (MSAL Python, msal-node)
//! refuse an `http` authority, and they trust additional roots only as CA files
//! (`REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`). A CA that outlives the sandbox
//! process lets a user trust it once, while the short-lived server certificate is made anew.
//!
//! Why one port for both schemes: the managed identity endpoints the sandbox plays are plain http
//! in Azure (IMDS, App Service, Azure Arc, Cloud Shell, Azure ML), while Entra ID, the Bot Service
//! and the Bot Connector are https. The first byte of a connection tells them apart (a TLS
//! handshake record starts with 0x16, an HTTP request with a method's letter), so the printed
//! URLs differ only in their scheme.

pub(crate) mod ca;
pub(crate) mod listener;
