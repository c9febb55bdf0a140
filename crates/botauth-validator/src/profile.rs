//! Trust profiles: which issuers a validator accepts, where their keys come from, and the extra
//! rules each one adds (docs/protocol.md §6, metadata table). Every profile belongs to one
//! [`Validator`](crate::Validator); there is no process-global issuer list a request could widen.

use botauth_core::Cloud;

/// Entra's public authority host.
pub(crate) const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The host of Entra v1 issuers (`https://sts.windows.net/{tenant}/`).
pub(crate) const PUBLIC_V1_ISSUER_HOST: &str = "https://sts.windows.net";

/// The tenants whose tokens the Bot Framework Emulator and skills present (docs/protocol.md §6).
pub(crate) const BOT_FRAMEWORK_TENANTS: [&str; 2] = [
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

    /// The Bot Service endpoints of `cloud` (custom clouds bring their own): for
    /// [`Cloud::UsGov`] issuer `https://api.botframework.us` and caller id
    /// `urn:botframework:azureusgov`; for [`Cloud::China`] issuer
    /// `https://api.botframework.azure.cn` (no Bot Framework caller id URN exists for it).
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
    /// Issuers and metadata URLs are built as `{host}/{tenant}/…`, so a configured trailing
    /// slash must not double up and make every issuer comparison fail.
    fn set_authority(&mut self, host: impl Into<String>) {
        self.authority = host.into().trim_end_matches('/').to_owned();
    }

    fn set_v1_issuer(&mut self, host: impl Into<String>) {
        self.v1_issuer = host.into().trim_end_matches('/').to_owned();
    }

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

/// A configured tenant as issuers are matched: tenant ids and domains compare without case.
fn tenant_id(tenant: impl Into<String>) -> String {
    tenant.into().to_ascii_lowercase()
}

/// The Bot Framework tenants followed by a profile's extra ones: the tenants whose issuers the
/// emulator and skill profiles accept.
pub(crate) fn bot_framework_tenants(extra: &[String]) -> impl Iterator<Item = &str> {
    BOT_FRAMEWORK_TENANTS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
}

/// The `tenant`, `authority_host` and `v1_issuer_host` setters of the Entra-style profiles
/// (Entra, emulator, skill): one definition of how a configured tenant and host become issuers,
/// with each profile's own docs and its own tenant list (`tenants` for Entra, `extra_tenants` for
/// the others, which add to [`BOT_FRAMEWORK_TENANTS`]).
macro_rules! entra_issuer_setters {
    (
        tenants: $tenants:ident,
        $(#[$tenant_doc:meta])* tenant,
        $(#[$authority_doc:meta])* authority_host,
        $(#[$v1_doc:meta])* v1_issuer_host $(,)?
    ) => {
        $(#[$tenant_doc])*
        #[must_use]
        pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
            self.$tenants.push(tenant_id(tenant));
            self
        }

        $(#[$authority_doc])*
        #[must_use]
        pub fn authority_host(mut self, host: impl Into<String>) -> Self {
            self.hosts.set_authority(host);
            self
        }

        $(#[$v1_doc])*
        #[must_use]
        pub fn v1_issuer_host(mut self, host: impl Into<String>) -> Self {
            self.hosts.set_v1_issuer(host);
            self
        }
    };
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
            tenants: vec![tenant_id(tenant)],
            hosts: EntraHosts::default(),
            allowed_callers: None,
        }
    }

    entra_issuer_setters! {
        tenants: tenants,
        /// Also accepts tokens of `tenant`.
        tenant,
        /// The authority host for v2 issuers and metadata (default
        /// `https://login.microsoftonline.com`; the sandbox's URL in tests).
        authority_host,
        /// The host of v1 issuers (default `https://sts.windows.net`).
        v1_issuer_host,
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

    entra_issuer_setters! {
        tenants: extra_tenants,
        /// Also accepts the bot's own tenant.
        tenant,
        /// The authority host (issuers and the `common` metadata).
        authority_host,
        /// The host of v1 issuers.
        v1_issuer_host,
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

    entra_issuer_setters! {
        tenants: extra_tenants,
        /// Also accepts the bot's own tenant.
        tenant,
        /// The authority host (issuers and the `common` metadata).
        authority_host,
        /// The host of v1 issuers.
        v1_issuer_host,
    }

    pub(crate) fn has_callers(&self) -> bool {
        !self.allowed_callers.is_empty()
    }
}

/// One trust profile, for [`ValidatorBuilder::profile`](crate::ValidatorBuilder::profile): a
/// [`BotServiceProfile`], [`EntraProfile`], [`EmulatorProfile`] or [`SkillProfile`] (each converts
/// with `From`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustProfile(pub(crate) AnyProfile);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnyProfile {
    BotService(BotServiceProfile),
    Entra(EntraProfile),
    Emulator(EmulatorProfile),
    Skill(SkillProfile),
}

impl From<BotServiceProfile> for TrustProfile {
    fn from(profile: BotServiceProfile) -> Self {
        TrustProfile(AnyProfile::BotService(profile))
    }
}

impl From<EntraProfile> for TrustProfile {
    fn from(profile: EntraProfile) -> Self {
        TrustProfile(AnyProfile::Entra(profile))
    }
}

impl From<EmulatorProfile> for TrustProfile {
    fn from(profile: EmulatorProfile) -> Self {
        TrustProfile(AnyProfile::Emulator(profile))
    }
}

impl From<SkillProfile> for TrustProfile {
    fn from(profile: SkillProfile) -> Self {
        TrustProfile(AnyProfile::Skill(profile))
    }
}

/// Which profile accepted a token (`Display` prints `bot_service`, `entra`, `emulator` or
/// `skill`, as serialized).
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

impl ProfileKind {
    /// `bot_service`, `entra`, `emulator` or `skill` (as serialized; the `profile` field of the
    /// `botauth.validate` span).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ProfileKind::BotService => "bot_service",
            ProfileKind::Entra => "entra",
            ProfileKind::Emulator => "emulator",
            ProfileKind::Skill => "skill",
        }
    }
}

impl std::fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds() {
        let p = BotServiceProfile::public();
        assert_eq!(p.issuer, "https://api.botframework.com");
        assert_eq!(
            p.metadata_url,
            "https://login.botframework.com/v1/.well-known/openidconfiguration"
        );
        assert_eq!(p.caller_id.as_deref(), Some("urn:botframework:azure"));
        let g = BotServiceProfile::for_cloud(&Cloud::UsGov);
        assert_eq!(g.issuer, "https://api.botframework.us");
        assert_eq!(g.caller_id.as_deref(), Some("urn:botframework:azureusgov"));
        let c = BotServiceProfile::for_cloud(&Cloud::China);
        assert_eq!(c.issuer, "https://api.botframework.azure.cn");
        assert_eq!(
            c.metadata_url,
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
