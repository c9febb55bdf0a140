//! The Service Fabric endpoint's own TLS listener, with a self-signed certificate that clients
//! pin by its thumbprint (`IDENTITY_SERVER_THUMBPRINT`) instead of trusting a CA.

use axum::Router;

use crate::tls::listener::{Listener, Mode, Peer};

/// Starts the Service Fabric TLS listener on 127.0.0.1 with a fresh certificate, serving `app`
/// (the sandbox's router, whose Service Fabric route answers only over this listener); returns
/// its address, the certificate's thumbprint and the server task.
pub(crate) async fn start(
    app: Router,
) -> std::io::Result<(std::net::SocketAddr, String, tokio::task::JoinHandle<()>)> {
    let tcp = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = tcp.local_addr()?;
    let identity = TlsIdentity::generate().map_err(std::io::Error::other)?;
    // A client that rejects the certificate (a thumbprint mismatch) ends in the handshake,
    // before any request could be read.
    let listener = Listener::new(tcp, Mode::TlsOnly(identity.acceptor));
    let app = app.into_make_service_with_connect_info::<Peer>();
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "botauth sandbox TLS server stopped");
        }
    });
    Ok((addr, identity.thumbprint, task))
}

/// A self-signed certificate and key for the Service Fabric endpoint, which clients pin by its
/// thumbprint (`IDENTITY_SERVER_THUMBPRINT`) instead of trusting a CA.
pub(crate) struct TlsIdentity {
    pub(crate) acceptor: openssl::ssl::SslAcceptor,
    pub(crate) thumbprint: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// An EC P-256 key and a self-signed certificate for 127.0.0.1, generated with OpenSSL.
    pub(crate) fn generate() -> Result<Self, openssl::error::ErrorStack> {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::ssl::{SslAcceptor, SslMethod};

        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let cert = crate::jwt::self_signed_certificate(&key, "botauth sandbox service fabric", 30)?;
        let thumbprint = cert
            .digest(MessageDigest::sha1())?
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_private_key(&key)?;
        acceptor.set_certificate(&cert)?;
        acceptor.check_private_key()?;
        Ok(TlsIdentity {
            acceptor: acceptor.build(),
            thumbprint,
        })
    }
}
