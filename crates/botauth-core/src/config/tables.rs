//! The dialects as data (docs/protocol.md §7): for each section of each dialect, the keys it
//! knows, what each one sets in the model, and the enumerations (credential kinds) with their
//! names, .NET numbers and required keys. The reader in `env.rs` walks these tables; adding a key
//! is one row here. The README's key lists are generated from them ([`supported_keys_markdown`]).

use super::model::Dialect;

/// What a key sets (or why it sets nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum To {
    ClientId,
    TenantId,
    /// The credential kind (`AuthType`, `SourceType`, `MicrosoftAppType`).
    Kind,
    Secret,
    CertPath,
    /// A private key file, or the key's PEM text (Bot Framework JS `CertificatePrivateKey`).
    KeyPathOrPem,
    KeyPath,
    Thumbprint,
    Password,
    Base64Pfx,
    SendX5c,
    /// A managed identity's client id (`system` for the system-assigned one, where allowed).
    ManagedIdentity,
    FederatedClientId,
    TokenFile,
    /// Key Vault: the vault URL, the certificate's name, a pinned version, the identity that reads
    /// the vault (a client id or `system`), and how often rotation is checked.
    KeyVaultUrl,
    KeyVaultCertificateName,
    KeyVaultVersion,
    KeyVaultIdentity,
    KeyVaultRotationCheck,
    /// An authority host (`Instance`, `AZURE_AUTHORITY_HOST`).
    Authority,
    /// An authority URL with the tenant as its first path segment (`AuthorityEndpoint`).
    AuthorityWithTenant,
    /// A cloud by name or channel service URL.
    Cloud,
    IsGov,
    MetadataUrl,
    EmulatorMetadataUrl,
    Issuer,
    EntraMetadataUrl,
    Audiences,
    InboundTenant,
    ValidIssuers,
    BotServiceTokens,
    KeyRefresh,
    /// Caller app ids for Entra tokens (Agents semantics).
    AllowedCallers,
    /// Calling bots' app ids for skill tokens (Bot Framework semantics).
    SkillCallers,
    AllowedServiceUrls,
    TokenServiceUrl,
    HttpTimeout,
    Scopes,
    Skip,
    /// `ConnectionsMap` fields.
    MapServiceUrl,
    MapAudience,
    MapConnection,
    /// A sub-section read by its own table (`ClientCredentials`).
    Nested,
    /// Read before the dialects, by the configuration loader or another command.
    Loader,
    /// Must be `true` when set; `false` is refused with this message.
    MustBeTrue(&'static str),
    /// Recognised but not supported: the message says what to use instead.
    Refused(&'static str),
    /// Recognised, without effect in botauth: a warning says why.
    Ignored(&'static str),
}

impl To {
    /// Whether the key holds a list (indexed children `Key__0`, or a comma/space list).
    pub(crate) fn is_list(self) -> bool {
        matches!(
            self,
            To::Audiences
                | To::ValidIssuers
                | To::AllowedCallers
                | To::SkillCallers
                | To::AllowedServiceUrls
                | To::Scopes
        )
    }

    /// The model setting a row feeds (for `botauth config`'s sources).
    pub(crate) fn setting(self) -> &'static str {
        match self {
            To::ClientId => "client_id",
            To::TenantId => "tenant_id",
            To::AuthorityWithTenant => "tenant_id, cloud.authority_host",
            To::Kind
            | To::Secret
            | To::CertPath
            | To::KeyPathOrPem
            | To::KeyPath
            | To::Thumbprint
            | To::Password
            | To::Base64Pfx
            | To::SendX5c
            | To::ManagedIdentity
            | To::FederatedClientId
            | To::TokenFile
            | To::KeyVaultUrl
            | To::KeyVaultCertificateName
            | To::KeyVaultVersion
            | To::KeyVaultIdentity
            | To::KeyVaultRotationCheck
            | To::Skip => "credentials",
            To::Authority => "cloud.authority_host",
            To::Cloud | To::IsGov => "cloud",
            To::MetadataUrl => "inbound.metadata_url",
            To::EmulatorMetadataUrl => "inbound.emulator_metadata_url",
            To::Issuer => "inbound.issuer",
            To::EntraMetadataUrl => "inbound.entra_metadata_url",
            To::Audiences => "inbound.extra_audiences",
            To::InboundTenant => "inbound.entra_tenants",
            To::ValidIssuers => "inbound.valid_issuers",
            To::BotServiceTokens => "inbound.bot_service",
            To::KeyRefresh => "inbound.key_refresh",
            To::AllowedCallers | To::SkillCallers => "inbound.allowed_callers",
            To::AllowedServiceUrls => "allowed_service_urls",
            To::TokenServiceUrl => "token_service_url",
            To::HttpTimeout => "http_timeout",
            To::Scopes => "scopes",
            To::MapServiceUrl | To::MapAudience | To::MapConnection => "connections_map",
            To::Loader => "(loader)",
            To::Nested | To::MustBeTrue(_) | To::Refused(_) | To::Ignored(_) => "",
        }
    }

    /// What to put in a required key, for "is required: …" messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            To::ClientId => "set it to the bot's application (client) id",
            To::TenantId => "set it to the bot's tenant (directory) id",
            To::Secret => "set it to the client secret's value (not its id)",
            To::CertPath => "set it to the certificate file (PEM with or without its key, or PFX)",
            To::Base64Pfx => "set it to the base64 encoding of the PFX file",
            To::ManagedIdentity => "set it to the managed identity's client id",
            To::FederatedClientId => {
                "set it to the client id of the managed identity registered as a federated credential"
            }
            To::TokenFile => "set it to the path of the federated (projected) token file",
            To::Thumbprint => "set it to the certificate's SHA-1 thumbprint",
            To::KeyVaultUrl => {
                "set it to the vault's URL, e.g. https://contoso-bot.vault.azure.net/"
            }
            To::KeyVaultCertificateName => "set it to the certificate's name in the vault",
            _ => "set it",
        }
    }
}

/// A key of a section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// The key's canonical spelling, relative to its section.
    pub(crate) key: &'static str,
    /// Other spellings the SDKs accept (legacy names).
    pub(crate) aliases: &'static [&'static str],
    pub(crate) to: To,
}

const fn row(key: &'static str, to: To) -> Row {
    Row {
        key,
        aliases: &[],
        to,
    }
}

const fn aliased(key: &'static str, aliases: &'static [&'static str], to: To) -> Row {
    Row { key, aliases, to }
}

/// A group of keys sharing a prefix.
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) dialect: Dialect,
    /// The prefix in environment spelling; `{name}` and `{n}` stand for a connection name and an
    /// index. Empty for top-level keys.
    pub(crate) prefix: &'static str,
    /// Exact, case-sensitive keys (botas, workload identity, `BOTAUTH_*`); otherwise keys compare
    /// as .NET configuration does (case-insensitive, `:` = `__`).
    pub(crate) exact: bool,
    /// Keys starting with this (normalized) text and not in `rows` get an "unknown key" warning;
    /// `None` when the section has no prefix of its own to claim.
    pub(crate) claims: Option<&'static str>,
    pub(crate) rows: &'static [Row],
}

const STORE: &str = "botauth does not read certificate stores: export the certificate with its \
     key to a PEM or PFX file";

pub(crate) static BOTAS: Section = Section {
    dialect: Dialect::Botas,
    prefix: "",
    exact: true,
    claims: None,
    rows: &[
        row("CLIENT_ID", To::ClientId),
        row("CLIENT_SECRET", To::Secret),
        row("TENANT_ID", To::TenantId),
        row("MANAGED_IDENTITY_CLIENT_ID", To::ManagedIdentity),
        row("ALLOWED_SERVICE_URLS", To::AllowedServiceUrls),
    ],
};

pub(crate) static BOT_FRAMEWORK: Section = Section {
    dialect: Dialect::BotFramework,
    prefix: "",
    exact: false,
    claims: Some("microsoftapp"),
    rows: &[
        row("MicrosoftAppId", To::ClientId),
        row("MicrosoftAppPassword", To::Secret),
        row("MicrosoftAppTenantId", To::TenantId),
        row("MicrosoftAppType", To::Kind),
        row("CertificateThumbprint", To::Thumbprint),
        row("CertificatePrivateKey", To::KeyPathOrPem),
        row("CertificatePath", To::CertPath),
        row("ChannelService", To::Cloud),
        row("ToChannelFromBotLoginUrl", To::AuthorityWithTenant),
        row("ToChannelFromBotOAuthScope", To::Scopes),
        aliased(
            "ToBotFromChannelOpenIdMetadataUrl",
            &["BotOpenIdMetadata"],
            To::MetadataUrl,
        ),
        row(
            "ToBotFromEmulatorOpenIdMetadataUrl",
            To::EmulatorMetadataUrl,
        ),
        row("ToBotFromChannelTokenIssuer", To::Issuer),
        aliased("OAuthUrl", &["OAuthApiEndpoint"], To::TokenServiceUrl),
        row("AllowedCallers", To::SkillCallers),
        row(
            "ValidateAuthority",
            To::MustBeTrue(
                "botauth always validates the authority: remove ValidateAuthority=false",
            ),
        ),
        row(
            "CallerId",
            To::Ignored("botauth derives the caller from the verified token; CallerId is not read"),
        ),
    ],
};

pub(crate) static IDENTITY_WEB: Section = Section {
    dialect: Dialect::IdentityWeb,
    prefix: "AzureAd__",
    exact: false,
    claims: Some("azuread__"),
    rows: &[
        row("ClientId", To::ClientId),
        row("TenantId", To::TenantId),
        row("Instance", To::Authority),
        row("Authority", To::AuthorityWithTenant),
        row("ClientSecret", To::Secret),
        row("SendX5C", To::SendX5c),
        row("ClientCredentials", To::Nested),
        row(
            "ClientCertificates",
            To::Refused("the legacy ClientCertificates list is not read: use ClientCredentials"),
        ),
        row(
            "Domain",
            To::Ignored("it is used by user sign-in (B2C), not by a bot's client credentials"),
        ),
        row(
            "CallbackPath",
            To::Ignored("it is used by web sign-in, not by a bot's client credentials"),
        ),
        row(
            "AzureRegion",
            To::Ignored("tokens come from the authority host; regional endpoints are not used"),
        ),
    ],
};

pub(crate) static IDENTITY_WEB_CREDENTIAL: Section = Section {
    dialect: Dialect::IdentityWeb,
    prefix: "AzureAd__ClientCredentials__{n}__",
    exact: false,
    claims: Some(""),
    rows: &[
        row("SourceType", To::Kind),
        row("ClientSecret", To::Secret),
        row("CertificateDiskPath", To::CertPath),
        row("CertificatePassword", To::Password),
        row("Base64EncodedValue", To::Base64Pfx),
        row("ManagedIdentityClientId", To::ManagedIdentity),
        row("SignedAssertionFileDiskPath", To::TokenFile),
        row("Skip", To::Skip),
        row("KeyVaultUrl", To::KeyVaultUrl),
        row("KeyVaultCertificateName", To::KeyVaultCertificateName),
        row("CertificateStorePath", To::Ignored(STORE)),
        row("CertificateThumbprint", To::Ignored(STORE)),
        row("CertificateDistinguishedName", To::Ignored(STORE)),
    ],
};

pub(crate) static AGENTS_CONNECTION: Section = Section {
    dialect: Dialect::AgentsSdk,
    prefix: "Connections__{name}__Settings__",
    exact: false,
    claims: Some(""),
    rows: &[
        row("AuthType", To::Kind),
        row("ClientId", To::ClientId),
        row("ClientSecret", To::Secret),
        row("TenantId", To::TenantId),
        row("AuthorityEndpoint", To::AuthorityWithTenant),
        row("Scopes", To::Scopes),
        row("CertThumbprint", To::Thumbprint),
        row("CertPemFile", To::CertPath),
        row("CertKeyFile", To::KeyPath),
        row("SendX5C", To::SendX5c),
        aliased("FederatedClientId", &["FICClientId"], To::FederatedClientId),
        aliased("FederatedTokenFile", &["WIDAssertionFile"], To::TokenFile),
        row("Issuers", To::ValidIssuers),
        row(
            "ValidateIssuer",
            To::MustBeTrue("botauth always validates the issuer: remove ValidateIssuer=false"),
        ),
        row("CertSubjectName", To::Ignored(STORE)),
        row("CertStoreName", To::Ignored(STORE)),
        row("ValidCertificateOnly", To::Ignored(STORE)),
        row(
            "AzureRegion",
            To::Ignored("tokens come from the authority host; regional endpoints are not used"),
        ),
    ],
};

pub(crate) static AGENTS_MAP: Section = Section {
    dialect: Dialect::AgentsSdk,
    prefix: "ConnectionsMap__{n}__",
    exact: false,
    claims: Some(""),
    rows: &[
        row("ServiceUrl", To::MapServiceUrl),
        row("Audience", To::MapAudience),
        row("Connection", To::MapConnection),
    ],
};

pub(crate) static AGENTS_TOKEN_VALIDATION: Section = Section {
    dialect: Dialect::AgentsSdk,
    prefix: "TokenValidation__",
    exact: false,
    claims: Some("tokenvalidation__"),
    rows: &[
        row("Audiences", To::Audiences),
        row("TenantId", To::InboundTenant),
        row("ValidIssuers", To::ValidIssuers),
        row("IsGov", To::IsGov),
        row("AzureBotServiceOpenIdMetadataUrl", To::MetadataUrl),
        row("OpenIdMetadataUrl", To::EntraMetadataUrl),
        row("AzureBotServiceTokenHandling", To::BotServiceTokens),
        row("OpenIdMetadataRefresh", To::KeyRefresh),
        row("AllowedCallers", To::AllowedCallers),
        row(
            "Enabled",
            To::MustBeTrue(
                "TokenValidation:Enabled=false turns authentication off in old Agents SDK versions; \
                 botauth never does: remove it (use `botauth sandbox` to test locally with real tokens)",
            ),
        ),
    ],
};

pub(crate) static AGENTS_CLIENT_FACTORY: Section = Section {
    dialect: Dialect::AgentsSdk,
    prefix: "RestChannelServiceClientFactory__",
    exact: false,
    claims: Some("restchannelserviceclientfactory__"),
    rows: &[
        row("TokenServiceEndpoint", To::TokenServiceUrl),
        row(
            "TokenServiceAudience",
            To::Ignored("the Token Service is called with the cloud's channel scope"),
        ),
    ],
};

pub(crate) static WORKLOAD_IDENTITY: Section = Section {
    dialect: Dialect::WorkloadIdentity,
    prefix: "",
    exact: true,
    claims: None,
    rows: &[
        row("AZURE_CLIENT_ID", To::ClientId),
        row("AZURE_TENANT_ID", To::TenantId),
        row("AZURE_FEDERATED_TOKEN_FILE", To::TokenFile),
        row("AZURE_AUTHORITY_HOST", To::Authority),
    ],
};

/// botauth's own overrides, read in every dialect and over a botauth file.
pub(crate) static BOTAUTH: Section = Section {
    dialect: Dialect::Native,
    prefix: "BOTAUTH_",
    exact: true,
    claims: Some("botauth_"),
    rows: &[
        row("CLOUD", To::Cloud),
        row("AUTHORITY_HOST", To::Authority),
        row("METADATA_URL", To::MetadataUrl),
        row("ALLOWED_SERVICE_URLS", To::AllowedServiceUrls),
        row("HTTP_TIMEOUT", To::HttpTimeout),
        row("TOKEN_SERVICE_URL", To::TokenServiceUrl),
        row("KEY_VAULT_URL", To::KeyVaultUrl),
        row("KEY_VAULT_CERTIFICATE_NAME", To::KeyVaultCertificateName),
        row("KEY_VAULT_CERTIFICATE_VERSION", To::KeyVaultVersion),
        row("KEY_VAULT_IDENTITY", To::KeyVaultIdentity),
        row("KEY_VAULT_ROTATION_CHECK", To::KeyVaultRotationCheck),
        row("CONFIG", To::Loader),
        row("SANDBOX_STATE_DIR", To::Loader),
    ],
};

/// A credential kind a dialect can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Secret,
    Certificate,
    /// A managed identity that is the bot (user-assigned: by the connection's client id).
    UserManagedIdentity,
    SystemManagedIdentity,
    /// A managed identity as a federated credential of the app.
    Federated,
    Workload,
    /// A certificate read from Azure Key Vault.
    KeyVault,
    Refused(&'static str),
}

/// One value of a credential-kind enumeration.
#[derive(Debug)]
pub(crate) struct Choice {
    pub(crate) name: &'static str,
    /// The .NET enum number, accepted wherever the name is.
    pub(crate) number: u32,
    pub(crate) kind: Kind,
    /// Keys the kind needs: each inner list is "one of these".
    pub(crate) requires: &'static [&'static [To]],
}

const fn choice(
    name: &'static str,
    number: u32,
    kind: Kind,
    requires: &'static [&'static [To]],
) -> Choice {
    Choice {
        name,
        number,
        kind,
        requires,
    }
}

/// Agents SDK `AuthType`.
pub(crate) static AGENTS_AUTH_TYPES: &[Choice] = &[
    choice(
        "Certificate",
        0,
        Kind::Certificate,
        &[&[To::CertPath, To::Thumbprint]],
    ),
    choice(
        "CertificateSubjectName",
        1,
        Kind::Refused(
            "botauth does not read certificate stores: export the certificate and its key to PEM \
             files, set AuthType Certificate with CertPemFile and CertKeyFile, and SendX5C=true to \
             keep subject name + issuer validation",
        ),
        &[],
    ),
    choice("ClientSecret", 2, Kind::Secret, &[&[To::Secret]]),
    choice("UserManagedIdentity", 3, Kind::UserManagedIdentity, &[]),
    choice("SystemManagedIdentity", 4, Kind::SystemManagedIdentity, &[]),
    choice(
        "FederatedCredentials",
        5,
        Kind::Federated,
        &[&[To::FederatedClientId]],
    ),
    choice("WorkloadIdentity", 6, Kind::Workload, &[&[To::TokenFile]]),
    choice(
        "IdentityProxyManager",
        7,
        Kind::Refused(
            "use FederatedCredentials or WorkloadIdentity, or implement botauth's CredentialProvider \
             and register it as a custom credential",
        ),
        &[],
    ),
];

/// Microsoft.Identity.Web `SourceType`.
pub(crate) static IDENTITY_WEB_SOURCE_TYPES: &[Choice] = &[
    choice(
        "Certificate",
        0,
        Kind::Refused(
            "an in-memory certificate cannot come from configuration: use SourceType Path or Base64Encoded",
        ),
        &[],
    ),
    choice(
        "KeyVault",
        1,
        Kind::KeyVault,
        &[&[To::KeyVaultUrl], &[To::KeyVaultCertificateName]],
    ),
    choice("Base64Encoded", 2, Kind::Certificate, &[&[To::Base64Pfx]]),
    choice("Path", 3, Kind::Certificate, &[&[To::CertPath]]),
    choice("StoreWithThumbprint", 4, Kind::Refused(STORE_INSTEAD), &[]),
    choice(
        "StoreWithDistinguishedName",
        5,
        Kind::Refused(STORE_INSTEAD),
        &[],
    ),
    choice("ClientSecret", 6, Kind::Secret, &[&[To::Secret]]),
    choice(
        "SignedAssertionFromManagedIdentity",
        7,
        Kind::Federated,
        &[],
    ),
    choice(
        "SignedAssertionFilePath",
        8,
        Kind::Workload,
        &[&[To::TokenFile]],
    ),
    choice(
        "SignedAssertionFromVault",
        9,
        Kind::Refused(
            "signed assertions are not read from Key Vault: use SignedAssertionFromManagedIdentity \
             or SignedAssertionFilePath",
        ),
        &[],
    ),
    choice(
        "AutoDecryptKeys",
        10,
        Kind::Refused(
            "decrypt keys decrypt tokens and are not client credentials: remove this entry",
        ),
        &[],
    ),
    choice(
        "CustomSignedAssertion",
        11,
        Kind::Refused(
            "implement botauth's CredentialProvider for your assertion and register it as a custom \
             credential",
        ),
        &[],
    ),
    choice("ManagedCertificate", 12, Kind::Refused(STORE_INSTEAD), &[]),
    choice(
        "StoreWithSubjectName",
        13,
        Kind::Refused(STORE_INSTEAD),
        &[],
    ),
];

const STORE_INSTEAD: &str = "botauth does not read certificate stores: export the certificate \
     (with its key) to a PFX or PEM file and use SourceType Path";

/// Bot Framework `MicrosoftAppType` (no numbers: the SDKs bind it as a string).
pub(crate) static BOT_FRAMEWORK_APP_TYPES: &[&str] =
    &["MultiTenant", "SingleTenant", "UserAssignedMSI"];

/// The enumeration's names for messages: "A, B or C".
pub(crate) fn names(choices: &[Choice], usable_only: bool) -> String {
    let names: Vec<&str> = choices
        .iter()
        .filter(|c| !usable_only || !matches!(c.kind, Kind::Refused(_)))
        .map(|c| c.name)
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// Every section, in the order the README lists them.
pub(crate) static SECTIONS: [&Section; 10] = [
    &BOTAS,
    &BOT_FRAMEWORK,
    &IDENTITY_WEB,
    &IDENTITY_WEB_CREDENTIAL,
    &AGENTS_CONNECTION,
    &AGENTS_MAP,
    &AGENTS_TOKEN_VALIDATION,
    &AGENTS_CLIENT_FACTORY,
    &WORKLOAD_IDENTITY,
    &BOTAUTH,
];

/// The README's list of every key botauth reads, per dialect, generated from the tables (a test
/// keeps the README's copy equal to it).
pub(crate) fn supported_keys_markdown() -> String {
    let mut out = String::new();
    let mut last: Option<Dialect> = None;
    for section in SECTIONS {
        if last != Some(section.dialect) {
            let title = match section.dialect {
                Dialect::Native => {
                    "botauth overrides (every dialect, and over a `--config` file)".to_owned()
                }
                d => d.to_string(),
            };
            out.push_str(&format!("\n**{title}**\n\n"));
            last = Some(section.dialect);
        }
        for row in section.rows {
            let key = format!("{}{}", section.prefix, row.key);
            let aliases = if row.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also `{}`)", row.aliases.join("`, `"))
            };
            let effect = match row.to {
                To::Kind => {
                    let values = match section.dialect {
                        Dialect::AgentsSdk => names(AGENTS_AUTH_TYPES, false),
                        Dialect::IdentityWeb => names(IDENTITY_WEB_SOURCE_TYPES, false),
                        _ => BOT_FRAMEWORK_APP_TYPES.join(", "),
                    };
                    format!("credential kind: {values}")
                }
                To::Nested => "see below".to_owned(),
                To::Loader => "read by the configuration loader / `botauth sandbox`".to_owned(),
                To::MustBeTrue(_) => "accepted only as `true`".to_owned(),
                To::Refused(why) | To::Ignored(why) => {
                    let verb = if matches!(row.to, To::Refused(_)) {
                        "refused"
                    } else {
                        "no effect"
                    };
                    format!("{verb}: {}", why.split(':').next().unwrap_or(why))
                }
                to => describe(to).to_owned(),
            };
            out.push_str(&format!("- `{key}`{aliases}: {effect}\n"));
        }
    }
    out
}

fn describe(to: To) -> &'static str {
    match to {
        To::ClientId => "the app (client) id",
        To::TenantId => "the tenant id",
        To::Secret => "client secret",
        To::CertPath => "certificate file (PEM or PFX)",
        To::KeyPathOrPem => "private key file, or the key's PEM text",
        To::KeyPath => "private key file",
        To::Thumbprint => "expected certificate thumbprint",
        To::Password => "PFX / key password",
        To::Base64Pfx => "base64 PFX",
        To::SendX5c => "send the certificate chain (`x5c`)",
        To::ManagedIdentity => "managed identity client id (or `system`)",
        To::FederatedClientId => "managed identity used as a federated credential",
        To::TokenFile => "federated token file",
        To::KeyVaultUrl => "Key Vault URL (`https://{vault}.vault.azure.net/`)",
        To::KeyVaultCertificateName => "certificate name in the vault",
        To::KeyVaultVersion => "pinned certificate version (no rotation)",
        To::KeyVaultIdentity => "managed identity client id that reads the vault (or `system`)",
        To::KeyVaultRotationCheck => "how often the vault is checked for a new version (`1h`)",
        To::Authority => "authority host (selects a known cloud)",
        To::AuthorityWithTenant => "authority URL with the tenant",
        To::Cloud => "cloud (`public`, `usgov`, `china`, or a channel service URL)",
        To::IsGov => "US Government cloud",
        To::MetadataUrl => "inbound Bot Service metadata URL",
        To::EmulatorMetadataUrl => "inbound emulator metadata URL",
        To::Issuer => "inbound Bot Service issuer",
        To::EntraMetadataUrl => "inbound Entra metadata URL",
        To::Audiences => "inbound audiences (list)",
        To::InboundTenant => "accept Entra tokens of this tenant",
        To::ValidIssuers => "inbound issuers allowed (list)",
        To::BotServiceTokens => "accept Bot Service tokens",
        To::KeyRefresh => "signing-key refresh interval",
        To::AllowedCallers => "caller app ids allowed for Entra tokens (list, `*` = all)",
        To::SkillCallers => "calling bots allowed as skills (list, `*` = all)",
        To::AllowedServiceUrls => "extra service URLs the bot may send its token to (list)",
        To::TokenServiceUrl => "Bot Framework Token Service URL",
        To::HttpTimeout => "HTTP timeout (`30`, `30s`, `1500ms`)",
        To::Scopes => "scopes of outgoing calls (list)",
        To::Skip => "skip this entry",
        To::MapServiceUrl => "`*` or a regular expression on the service URL",
        To::MapAudience => "inbound audience the rule applies to",
        To::MapConnection => "the connection to use",
        _ => "",
    }
}
