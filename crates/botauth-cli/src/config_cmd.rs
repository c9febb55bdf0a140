//! `botauth config`: the resolved configuration, secrets redacted, with where each value came from.

use std::path::PathBuf;
use std::process::ExitCode;

use botauth::core::config::{
    BotAuthConfig, ConfigLoader, CredentialConfig, Explained, ManagedIdentityId,
};
use botauth::core::internal::supported_keys_markdown;
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Read this file (`.env`, botauth TOML/JSON, or a .NET appsettings.json, layered as ASP.NET
    /// does) instead of the one BOTAUTH_CONFIG names or the working directory's `.env`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print every key botauth reads, per dialect, as Markdown (the README's list) and exit.
    #[arg(long, conflicts_with = "config")]
    keys: bool,
}

pub(crate) fn run(args: ConfigArgs) -> ExitCode {
    if args.keys {
        print!("{}", supported_keys_markdown());
        return ExitCode::SUCCESS;
    }
    let mut loader = ConfigLoader::from_process();
    if let Some(file) = args.config {
        loader = loader.file(file);
    }
    match loader.explain() {
        Ok(explained) => crate::print_json(&describe(&explained)),
        Err(e) => crate::fail_setup(&e),
    }
}

/// What `botauth config` prints, members in the documented order; never a secret's value.
#[derive(Serialize)]
struct Printed {
    dialect: String,
    client_id: Option<String>,
    tenant_id: Option<String>,
    authority_host: String,
    connector_scope: String,
    connection: Option<String>,
    credentials: Vec<Value>,
    scopes: Vec<String>,
    connections: Vec<Value>,
    connections_map: Vec<Value>,
    inbound: Value,
    allowed_service_urls: Vec<String>,
    token_service_url: Option<String>,
    http_timeout_seconds: Option<f64>,
    sources: Vec<Value>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

fn describe(explained: &Explained) -> Printed {
    let c = &explained.config;
    Printed {
        dialect: c.dialect.to_string(),
        client_id: c.client_id.clone(),
        tenant_id: c.tenant_id.clone(),
        authority_host: c.cloud.authority_host().to_owned(),
        connector_scope: c.cloud.bot_connector_scope().to_owned(),
        connection: c.connection_name.clone(),
        credentials: c.credentials.iter().map(credential).collect(),
        scopes: c.scopes.clone(),
        connections: c
            .connections
            .iter()
            .map(|n| {
                json!({
                    "name": n.name,
                    "client_id": n.client_id,
                    "tenant_id": n.tenant_id,
                    "authority_host": n.cloud.authority_host(),
                    "credentials": n.credentials.iter().map(credential).collect::<Vec<_>>(),
                    "scopes": n.scopes,
                })
            })
            .collect(),
        connections_map: c
            .connections_map
            .iter()
            .map(|m| {
                json!({
                    "service_url": m.service_url,
                    "audience": m.audience,
                    "connection": m.connection,
                })
            })
            .collect(),
        inbound: inbound(c),
        allowed_service_urls: c.allowed_service_urls.clone(),
        token_service_url: c.token_service_url.clone(),
        http_timeout_seconds: c.http_timeout.map(|t| t.as_secs_f64()),
        sources: explained
            .sources
            .iter()
            .map(|s| json!({"setting": s.setting, "key": s.key, "from": s.origin.to_string()}))
            .collect(),
        warnings: explained.warnings.clone(),
        notes: explained.notes.clone(),
    }
}

fn inbound(c: &BotAuthConfig) -> Value {
    let i = &c.inbound;
    json!({
        "bot_service": i.bot_service,
        "metadata_url": i.metadata_url.as_deref().unwrap_or(c.cloud.bot_service_metadata_url()),
        "issuer": i.issuer.as_deref().unwrap_or(c.cloud.bot_service_issuer()),
        "entra_tenants": i.entra_tenants,
        "emulator": i.emulator,
        "skills": i.skills,
        "extra_audiences": i.extra_audiences,
        "allowed_callers": i.allowed_callers,
        "valid_issuers": i.valid_issuers,
        "key_refresh_seconds": i.key_refresh.map(|t| t.as_secs_f64()),
        "strict_endorsements": i.strict_endorsements,
    })
}

fn identity(id: &ManagedIdentityId) -> Value {
    match id {
        ManagedIdentityId::ClientId(v) => json!({"client_id": v}),
        ManagedIdentityId::ObjectId(v) => json!({"object_id": v}),
        ManagedIdentityId::ResourceId(v) => json!({"resource_id": v}),
        _ => json!("system"),
    }
}

const REDACTED: &str = "[redacted]";

fn credential(c: &CredentialConfig) -> Value {
    let shown = |set: bool| set.then_some(REDACTED);
    match c {
        CredentialConfig::ClientSecret { .. } => {
            json!({"type": c.type_name(), "secret": REDACTED})
        }
        CredentialConfig::Certificate(cert) => json!({
            "type": c.type_name(),
            "certificate_path": cert.certificate_path,
            "key_path": cert.key_path,
            "key_pem": shown(cert.key_pem.is_some()),
            "base64_pfx": shown(cert.base64_pfx.is_some()),
            "password": shown(cert.password.is_some()),
            "thumbprint": cert.thumbprint,
            "send_x5c": cert.send_x5c,
        }),
        CredentialConfig::KeyVaultCertificate(vault) => json!({
            "type": c.type_name(),
            "vault_url": vault.vault_url,
            "certificate_name": vault.certificate_name,
            "version": vault.version,
            "identity": identity(&vault.identity),
            "send_x5c": vault.send_x5c,
            "rotation_check_seconds": vault.rotation_check.map(|t| t.as_secs_f64()),
        }),
        CredentialConfig::ManagedIdentity { id }
        | CredentialConfig::FederatedManagedIdentity { id } => {
            json!({"type": c.type_name(), "id": identity(id)})
        }
        CredentialConfig::WorkloadIdentity { token_file } => {
            json!({"type": c.type_name(), "token_file": token_file})
        }
        CredentialConfig::Custom { name, settings } => json!({
            "type": "custom",
            "name": name,
            "settings": settings.keys().map(|k| (k.clone(), json!(REDACTED))).collect::<serde_json::Map<_, _>>(),
        }),
        _ => json!({"type": c.type_name()}),
    }
}
