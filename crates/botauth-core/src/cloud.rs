//! National clouds and their endpoints (docs/protocol.md §2 and §6).

use serde::Deserialize;

use crate::{Error, Result};

/// A Microsoft cloud: which authority, Bot Connector scope and Bot Service metadata to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// The public (commercial) cloud.
    #[default]
    Public,
    /// Azure US Government.
    UsGov,
    /// Azure China (21Vianet).
    China,
    /// Any other set of endpoints (sovereign clouds, local development).
    Custom(Box<CloudEndpoints>),
}

/// The endpoints that make up a cloud: give them to [`Cloud::Custom`] and read them through the
/// [`Cloud`] (e.g. [`Cloud::authority_host`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CloudEndpoints {
    /// Entra authority host, e.g. `https://login.microsoftonline.com` (no trailing slash).
    authority_host: String,
    /// The scope for Bot Connector tokens, e.g. `https://api.botframework.com/.default`.
    bot_connector_scope: String,
    /// The Bot Service OpenID metadata URL (inbound).
    bot_service_metadata_url: String,
    /// The issuer of Bot Service channel tokens (inbound).
    bot_service_issuer: String,
    /// The audience of managed-identity tokens used as federated credentials.
    federation_audience: String,
}

impl CloudEndpoints {
    /// Endpoints with every field given.
    pub fn new(
        authority_host: impl Into<String>,
        bot_connector_scope: impl Into<String>,
        bot_service_metadata_url: impl Into<String>,
        bot_service_issuer: impl Into<String>,
        federation_audience: impl Into<String>,
    ) -> Self {
        CloudEndpoints {
            authority_host: authority_host.into(),
            bot_connector_scope: bot_connector_scope.into(),
            bot_service_metadata_url: bot_service_metadata_url.into(),
            bot_service_issuer: bot_service_issuer.into(),
            federation_audience: federation_audience.into(),
        }
    }
}

struct Known {
    authority_host: &'static str,
    bot_connector_scope: &'static str,
    bot_service_metadata_url: &'static str,
    bot_service_issuer: &'static str,
    federation_audience: &'static str,
}

const PUBLIC: Known = Known {
    authority_host: "https://login.microsoftonline.com",
    bot_connector_scope: "https://api.botframework.com/.default",
    bot_service_metadata_url: "https://login.botframework.com/v1/.well-known/openidconfiguration",
    bot_service_issuer: "https://api.botframework.com",
    federation_audience: "api://AzureADTokenExchange",
};

const US_GOV: Known = Known {
    authority_host: "https://login.microsoftonline.us",
    bot_connector_scope: "https://api.botframework.us/.default",
    bot_service_metadata_url: "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
    bot_service_issuer: "https://api.botframework.us",
    federation_audience: "api://AzureADTokenExchangeUSGov",
};

const CHINA: Known = Known {
    authority_host: "https://login.chinacloudapi.cn",
    bot_connector_scope: "https://api.botframework.azure.cn/.default",
    bot_service_metadata_url: "https://login.botframework.azure.cn/v1/.well-known/openidconfiguration",
    bot_service_issuer: "https://api.botframework.azure.cn",
    federation_audience: "api://AzureADTokenExchangeChina",
};

macro_rules! field {
    ($self:ident, $name:ident) => {
        match $self {
            Cloud::Public => PUBLIC.$name,
            Cloud::UsGov => US_GOV.$name,
            Cloud::China => CHINA.$name,
            Cloud::Custom(c) => &c.$name,
        }
    };
}

impl Cloud {
    /// Entra authority host (no trailing slash).
    pub fn authority_host(&self) -> &str {
        field!(self, authority_host)
    }

    /// The Bot Connector scope (`…/.default`).
    pub fn bot_connector_scope(&self) -> &str {
        field!(self, bot_connector_scope)
    }

    /// The Bot Service OpenID metadata URL.
    pub fn bot_service_metadata_url(&self) -> &str {
        field!(self, bot_service_metadata_url)
    }

    /// The issuer of Bot Service channel tokens.
    pub fn bot_service_issuer(&self) -> &str {
        field!(self, bot_service_issuer)
    }

    /// The managed-identity federation audience.
    pub fn federation_audience(&self) -> &str {
        field!(self, federation_audience)
    }

    /// The Azure Key Vault resource of this cloud (`https://vault.azure.net` for the public one;
    /// a token for a vault is requested for `{resource}/.default`). `None` for a custom cloud,
    /// whose vaults may be in any of the three.
    pub(crate) fn key_vault_resource(&self) -> Option<&'static str> {
        match self {
            Cloud::Public => Some("https://vault.azure.net"),
            Cloud::UsGov => Some("https://vault.usgovcloudapi.net"),
            Cloud::China => Some("https://vault.azure.cn"),
            Cloud::Custom(_) => None,
        }
    }

    /// The same cloud with another authority host (local development, sovereign proxies).
    pub fn with_authority_host(&self, authority_host: impl Into<String>) -> Cloud {
        let mut endpoints = self.endpoints();
        endpoints.authority_host = authority_host.into().trim_end_matches('/').to_owned();
        Cloud::Custom(Box::new(endpoints))
    }

    /// All endpoints of this cloud.
    pub(crate) fn endpoints(&self) -> CloudEndpoints {
        CloudEndpoints::new(
            self.authority_host(),
            self.bot_connector_scope(),
            self.bot_service_metadata_url(),
            self.bot_service_issuer(),
            self.federation_audience(),
        )
    }
}

/// Parses a cloud name: `public` (also `AzurePublicCloud`, `global`), `usgov` (`AzureUSGovernment`,
/// `gov`), `china` (`AzureChinaCloud`), or a Bot Framework `ChannelService` URL.
///
/// ```
/// use botauth_core::Cloud;
/// assert_eq!("AzureUSGovernment".parse::<Cloud>().unwrap(), Cloud::UsGov);
/// ```
impl std::str::FromStr for Cloud {
    type Err = Error;

    fn from_str(name: &str) -> Result<Cloud> {
        let n = name.trim().trim_end_matches('/').to_ascii_lowercase();
        match n.as_str() {
            "" | "public" | "azurepublic" | "azurepubliccloud" | "global" | "azurecloud" => {
                Ok(Cloud::Public)
            }
            "usgov"
            | "gov"
            | "usgovernment"
            | "azureusgovernment"
            | "azureusgovernmentcloud"
            | "https://botframework.azure.us" => Ok(Cloud::UsGov),
            "china" | "azurechina" | "azurechinacloud" | "https://botframework.azure.cn" => {
                Ok(Cloud::China)
            }
            // The value is not repeated: a secret pasted into the wrong key must not reach logs.
            _ => Err(Error::config(
                "cloud",
                "is not a known cloud: use public, usgov or china, or give custom endpoints",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Cloud {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Name(String),
            Custom(CloudEndpoints),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Name(n) => n.parse::<Cloud>().map_err(serde::de::Error::custom),
            Repr::Custom(c) => Ok(Cloud::Custom(Box::new(c))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_table() {
        assert_eq!(
            Cloud::Public.authority_host(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            Cloud::UsGov.bot_connector_scope(),
            "https://api.botframework.us/.default"
        );
        assert_eq!(
            Cloud::China.federation_audience(),
            "api://AzureADTokenExchangeChina"
        );
        assert_eq!(
            Cloud::UsGov.bot_service_issuer(),
            "https://api.botframework.us"
        );
        assert_eq!(
            Cloud::China.bot_service_metadata_url(),
            "https://login.botframework.azure.cn/v1/.well-known/openidconfiguration"
        );
    }

    #[test]
    fn names() {
        assert_eq!("AzureUSGovernment".parse::<Cloud>().unwrap(), Cloud::UsGov);
        assert_eq!(
            "https://botframework.azure.us/".parse::<Cloud>().unwrap(),
            Cloud::UsGov
        );
        assert_eq!("China".parse::<Cloud>().unwrap(), Cloud::China);
        assert_eq!("public".parse::<Cloud>().unwrap(), Cloud::Public);
        let err = "mars".parse::<Cloud>().unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "cloud"));
    }

    #[test]
    fn authority_override_keeps_the_rest() {
        let c = Cloud::UsGov.with_authority_host("http://127.0.0.1:9/");
        assert_eq!(c.authority_host(), "http://127.0.0.1:9");
        assert_eq!(
            c.bot_connector_scope(),
            "https://api.botframework.us/.default"
        );
    }

    #[test]
    fn deserializes_names_and_tables() {
        let c: Cloud = serde_json::from_str("\"usgov\"").unwrap();
        assert_eq!(c, Cloud::UsGov);
        let c: Cloud = serde_json::from_str(
            r#"{"authority_host":"a","bot_connector_scope":"b","bot_service_metadata_url":"c","bot_service_issuer":"d","federation_audience":"e"}"#,
        )
        .unwrap();
        assert_eq!(c.bot_service_issuer(), "d");
        assert!(serde_json::from_str::<Cloud>("\"mars\"").is_err());
    }
}
