//! Trust profiles: which issuers a validator accepts, where their keys come from, and the extra
//! rules each one adds (PROTOCOL §6, metadata table). Every profile belongs to one
//! [`Validator`](crate::Validator); there is no process-global issuer list a request could widen.

use botauth_core::Cloud;

/// Entra's public authority host.
pub(crate) const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The host of Entra v1 issuers (`https://sts.windows.net/{tenant}/`).
pub(crate) const PUBLIC_V1_ISSUER_HOST: &str = "https://sts.windows.net";

/// The tenants whose tokens the Bot Framework Emulator and skills present (PROTOCOL §6).
pub const BOT_FRAMEWORK_TENANTS: [&str; 2] = [
    "d6d49420-f39b-4df7-a1dc-d59a935871db",
    "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
];

/// Bot Service channel tokens of one cloud: the activities Teams, Web Chat and the other channels
/// send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotServiceProfile {
    pub(crate) metadata_url: String,
    pub(crate) issuer: String,
    pub(crate) caller_id: Option<String>,
}

impl BotServiceProfile {
    /// The public cloud: issuer `https://api.botframework.com`, caller id `urn:botframework:azure`.
    pub fn public() -> Self {
        Self::for_cloud(&Cloud::Public)
    }

    /// Azure US Government: issuer `https://api.botframework.us`, caller id
    /// `urn:botframework:azureusgov`.
    pub fn us_gov() -> Self {
        Self::for_cloud(&Cloud::UsGov)
    }

    /// Azure China: issuer `https://api.botframework.azure.cn` (no Bot Framework caller id URN
    /// exists for it).
    pub fn china() -> Self {
        Self::for_cloud(&Cloud::China)
    }

    /// The Bot Service endpoints of `cloud` (custom clouds bring their own).
    pub fn for_cloud(cloud: &Cloud) -> Self {
        let caller_id = match cloud {
            Cloud::Public => Some("urn:botframework:azure"),
            Cloud::UsGov => Some("urn:botframework:azureusgov"),
            _ => None,
        };
        BotServiceProfile {
            metadata_url: cloud.bot_service_metadata_url().to_owned(),
            issuer: cloud.bot_service_issuer().to_owned(),
            caller_id: caller_id.map(str::to_owned),
        }
    }

    /// Any other Bot Service deployment: its OpenID metadata URL (https, or http on loopback) and
    /// its exact issuer.
    pub fn custom(metadata_url: impl Into<String>, issuer: impl Into<String>) -> Self {
        BotServiceProfile {
            metadata_url: metadata_url.into(),
            issuer: issuer.into(),
            caller_id: None,
        }
    }

    /// Sets the caller id URN reported in [`BotClaims::caller_id`](crate::BotClaims::caller_id).
    #[must_use]
    pub fn caller_id(mut self, urn: impl Into<String>) -> Self {
        self.caller_id = Some(urn.into());
        self
    }

    /// The exact issuer accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The OpenID metadata URL.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }
}

/// Where Entra-issued tokens come from: the authority host (v2 issuers and metadata) and the v1
/// issuer host. The defaults are the public cloud's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntraHosts {
    pub(crate) authority: String,
    pub(crate) v1_issuer: String,
}

impl Default for EntraHosts {
    fn default() -> Self {
        EntraHosts {
            authority: PUBLIC_AUTHORITY.to_owned(),
            v1_issuer: PUBLIC_V1_ISSUER_HOST.to_owned(),
        }
    }
}

impl EntraHosts {
    pub(crate) fn v1_issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/", self.v1_issuer)
    }

    pub(crate) fn v2_issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.authority)
    }

    pub(crate) fn metadata_url(&self, tenant: &str) -> String {
        format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            self.authority
        )
    }
}

/// Who may call: a list of app ids, or anyone (only when `*` was given explicitly).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowedCallers {
    /// Any app (configured as `*`).
    Any,
    /// Only these app ids (compared case-insensitively).
    Only(Vec<String>),
}

impl AllowedCallers {
    /// From a configured list: `*` anywhere in it means any caller.
    pub fn from_list<I, S>(list: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = list.into_iter().map(Into::into).collect();
        if list.iter().any(|c| c.trim() == "*") {
            AllowedCallers::Any
        } else {
            AllowedCallers::Only(list.into_iter().map(|c| c.trim().to_owned()).collect())
        }
    }

    pub(crate) fn allows(&self, caller: &str) -> bool {
        match self {
            AllowedCallers::Any => true,
            AllowedCallers::Only(ids) => ids.iter().any(|id| id.eq_ignore_ascii_case(caller)),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, AllowedCallers::Only(ids) if ids.is_empty())
    }
}

/// Entra ID tokens for a single-tenant bot (Agents-style): `iss` is the v1 or v2 issuer of a
/// configured tenant, `tid` must be that tenant, `aud` the app id or `api://{app id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraProfile {
    pub(crate) tenants: Vec<String>,
    pub(crate) hosts: EntraHosts,
    pub(crate) allowed_callers: Option<AllowedCallers>,
}

impl EntraProfile {
    /// Tokens of `tenant` (a tenant id from configuration, never from a token).
    pub fn new(tenant: impl Into<String>) -> Self {
        EntraProfile {
            tenants: vec![tenant.into().to_ascii_lowercase()],
            hosts: EntraHosts::default(),
            allowed_callers: None,
        }
    }

    /// Also accepts tokens of `tenant`.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenants.push(tenant.into().to_ascii_lowercase());
        self
    }

    /// The authority host for v2 issuers and metadata (default `https://login.microsoftonline.com`;
    /// the sandbox's URL in tests).
    #[must_use]
    pub fn authority_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.authority = host.into().trim_end_matches('/').to_owned();
        self
    }

    /// The host of v1 issuers (default `https://sts.windows.net`).
    #[must_use]
    pub fn v1_issuer_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.v1_issuer = host.into().trim_end_matches('/').to_owned();
        self
    }

    /// Accepts only tokens whose caller (`appid` in v1, `azp` in v2) is listed.
    #[must_use]
    pub fn allowed_callers(mut self, callers: AllowedCallers) -> Self {
        self.allowed_callers = Some(callers);
        self
    }
}

/// Tokens from the Bot Framework Emulator (off unless added): `ver` is required, and the caller
/// (`appid` for 1.0, `azp` for 2.0) must be this bot's own app id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmulatorProfile {
    pub(crate) extra_tenants: Vec<String>,
    pub(crate) hosts: EntraHosts,
}

impl EmulatorProfile {
    /// The Bot Framework tenants on the public cloud.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also accepts the bot's own tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.extra_tenants.push(tenant.into().to_ascii_lowercase());
        self
    }

    /// The authority host (issuers and the `common` metadata).
    #[must_use]
    pub fn authority_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.authority = host.into().trim_end_matches('/').to_owned();
        self
    }

    /// The host of v1 issuers.
    #[must_use]
    pub fn v1_issuer_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.v1_issuer = host.into().trim_end_matches('/').to_owned();
        self
    }
}

/// Tokens from other bots calling this one as a skill (off unless added). An allowed-callers list
/// is required; `*` admits any bot only when given explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillProfile {
    pub(crate) allowed_callers: AllowedCallers,
    pub(crate) extra_tenants: Vec<String>,
    pub(crate) hosts: EntraHosts,
}

impl SkillProfile {
    /// Skill calls from the listed app ids (`*` for any).
    pub fn new(allowed_callers: AllowedCallers) -> Self {
        SkillProfile {
            allowed_callers,
            extra_tenants: Vec::new(),
            hosts: EntraHosts::default(),
        }
    }

    /// Also accepts the bot's own tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.extra_tenants.push(tenant.into().to_ascii_lowercase());
        self
    }

    /// The authority host (issuers and the `common` metadata).
    #[must_use]
    pub fn authority_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.authority = host.into().trim_end_matches('/').to_owned();
        self
    }

    /// The host of v1 issuers.
    #[must_use]
    pub fn v1_issuer_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.v1_issuer = host.into().trim_end_matches('/').to_owned();
        self
    }

    pub(crate) fn has_callers(&self) -> bool {
        !self.allowed_callers.is_empty()
    }
}

/// Which profile accepted a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProfileKind {
    /// A Bot Service channel token.
    BotService,
    /// An Entra ID token of a configured tenant.
    Entra,
    /// A Bot Framework Emulator token.
    Emulator,
    /// A skill call from another bot.
    Skill,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds() {
        let p = BotServiceProfile::public();
        assert_eq!(p.issuer(), "https://api.botframework.com");
        assert_eq!(
            p.metadata_url(),
            "https://login.botframework.com/v1/.well-known/openidconfiguration"
        );
        assert_eq!(p.caller_id.as_deref(), Some("urn:botframework:azure"));
        let g = BotServiceProfile::us_gov();
        assert_eq!(g.issuer(), "https://api.botframework.us");
        assert_eq!(g.caller_id.as_deref(), Some("urn:botframework:azureusgov"));
        let c = BotServiceProfile::china();
        assert_eq!(c.issuer(), "https://api.botframework.azure.cn");
        assert_eq!(
            c.metadata_url(),
            "https://login.botframework.azure.cn/v1/.well-known/openidconfiguration"
        );
        assert_eq!(c.caller_id, None);
    }

    #[test]
    fn entra_issuers() {
        let h = EntraHosts::default();
        assert_eq!(h.v1_issuer("t"), "https://sts.windows.net/t/");
        assert_eq!(h.v2_issuer("t"), "https://login.microsoftonline.com/t/v2.0");
        assert_eq!(
            h.metadata_url("t"),
            "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn allowed_callers() {
        assert_eq!(AllowedCallers::from_list(["a", " * "]), AllowedCallers::Any);
        let only = AllowedCallers::from_list(["App-1"]);
        assert!(only.allows("app-1"));
        assert!(!only.allows("app-2"));
        assert!(AllowedCallers::from_list(Vec::<String>::new()).is_empty());
        assert!(AllowedCallers::Any.allows("x"));
    }
}
