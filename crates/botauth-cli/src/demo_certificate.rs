//! The certificate for `botauth demo --credential certificate`: a key and certificate made on the
//! spot, written to a private temporary directory and registered on the sandbox's demo app.

use std::path::{Path, PathBuf};

use botauth::certificate::ClientCertificate;
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, GeneratedCertificate,
    Sandbox,
};

pub(crate) struct DemoCertificate {
    dir: PathBuf,
    thumbprint: String,
}

impl DemoCertificate {
    /// Writes the files and registers the certificate (besides the secret) on the demo app.
    pub(crate) fn install(sandbox: &Sandbox) -> Result<Self, super::demo::DemoError> {
        // Made now rather than compiled in, so the demo carries no key and works from any checkout.
        let generated = GeneratedCertificate::generate("botauth demo bot").map_err(|e| {
            super::demo::DemoError::Check(format!("cannot make the demo certificate: {e}"))
        })?;
        let (cert_pem, key_pem) = (generated.certificate_pem(), generated.private_key_pem());
        let cert = ClientCertificate::from_pem(cert_pem, Some(key_pem), None)
            .map_err(|e| super::demo::DemoError::Botauth(e.into()))?;
        let der = cert.chain_der().into_iter().next().ok_or_else(|| {
            super::demo::DemoError::Check("the demo certificate has no certificate".into())
        })?;
        sandbox.register_app(
            AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
                .with_secret(DEMO_CLIENT_SECRET)
                .with_certificate_der(der),
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("botauth-demo-{}-{nanos}", std::process::id()));
        let files = DemoCertificate {
            dir,
            thumbprint: cert.thumbprints().sha1_hex(),
        };
        let io = |e: std::io::Error| {
            super::demo::DemoError::Check(format!(
                "cannot write the demo certificate to {}: {e}",
                files.dir.display()
            ))
        };
        create_private_dir(&files.dir).map_err(io)?;
        std::fs::write(files.cert_path(), cert_pem).map_err(io)?;
        std::fs::write(files.key_path(), key_pem).map_err(io)?;
        Ok(files)
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.join("bot.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("bot.key")
    }

    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The Agents SDK environment of a bot that authenticates with this certificate.
    pub(crate) fn environment(&self, sandbox: &Sandbox) -> Vec<(String, String)> {
        let key = |k: &str| format!("Connections__ServiceConnection__Settings__{k}");
        vec![
            (key("AuthType"), "Certificate".to_owned()),
            (key("ClientId"), DEMO_CLIENT_ID.to_owned()),
            (key("TenantId"), DEMO_TENANT_ID.to_owned()),
            (key("CertPemFile"), self.cert_path().display().to_string()),
            (key("CertKeyFile"), self.key_path().display().to_string()),
            ("BOTAUTH_AUTHORITY_HOST".to_owned(), sandbox.url()),
        ]
    }
}

impl Drop for DemoCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir(dir)
}
