//! One reader per dialect of docs/protocol.md §7: botas, Bot Framework, Microsoft.Identity.Web,
//! the Microsoft 365 Agents SDK (and its connections), and Azure workload identity. Each scans its
//! sections of the tables and fills a [`Draft`].

use crate::config::model::{ConnectionConfig, ConnectionMapEntry, CredentialConfig, Dialect};
use crate::config::tables::{
    AGENTS_AUTH_TYPES, AGENTS_CLIENT_FACTORY, AGENTS_CONNECTION, AGENTS_MAP,
    AGENTS_TOKEN_VALIDATION, BOT_FRAMEWORK, BOT_FRAMEWORK_APP_TYPES, BOTAS, IDENTITY_WEB,
    IDENTITY_WEB_CREDENTIAL, IDENTITY_WEB_SOURCE_TYPES, Kind, To, WORKLOAD_IDENTITY, names,
};
use crate::config::validate::check_tenant;
use crate::{Error, Result, Secret};

use super::fields::*;
use super::settings::*;
use super::{Draft, Reader, no_configuration};

impl<'e> Reader<'e> {
    // -----------------------------------------------------------------------------------------
    // botas

    pub(super) fn botas(&mut self) -> Result<Draft> {
        let f = self.scan(&BOTAS, "")?;
        let client_id = self.client_id(&f, "")?;
        let tenant_id = f.require(To::TenantId, "")?;
        let mut draft = draft(
            Dialect::Botas,
            client_id,
            "CLIENT_ID",
            "TENANT_ID",
            "CLIENT_SECRET",
        );
        draft.config.tenant_id = Some(tenant_id.to_owned());
        let mi = f.get(To::ManagedIdentity);
        if let Some(mi) = mi {
            let kind = if mi.eq_ignore_ascii_case("system") {
                Kind::SystemManagedIdentity
            } else if mi.eq_ignore_ascii_case(client_id) {
                // The user-assigned identity *is* the bot's app registration.
                Kind::UserManagedIdentity
            } else {
                Kind::Federated
            };
            let credential = self.credential(kind, "MANAGED_IDENTITY_CLIENT_ID", &f, None, mi)?;
            draft.config.credentials.push(credential);
        }
        match f.get(To::Secret) {
            Some(secret) => draft
                .config
                .credentials
                .push(CredentialConfig::ClientSecret {
                    secret: Secret::new(secret),
                }),
            None if mi.is_none() && !self.key_vault_override_set() => {
                return Err(Error::config(
                    "CLIENT_SECRET",
                    "is required: set it to the client secret's value (not its id), or set \
                     MANAGED_IDENTITY_CLIENT_ID to use a managed identity",
                ));
            }
            None => {}
        }
        draft.config.allowed_service_urls = service_urls(&f)?;
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Bot Framework

    pub(super) fn bot_framework(&mut self) -> Result<Draft> {
        let f = self.scan(&BOT_FRAMEWORK, "")?;
        let app_type = match f.get(To::Kind) {
            None => "MultiTenant",
            Some(t) => BOT_FRAMEWORK_APP_TYPES
                .iter()
                .find(|n| n.eq_ignore_ascii_case(t))
                .ok_or_else(|| {
                    Error::config(
                        f.key(To::Kind),
                        format!(
                            "unknown app type{}: use MultiTenant, SingleTenant or UserAssignedMSI",
                            shown(t)
                        ),
                    )
                })?,
        };
        let id_why = if app_type == "UserAssignedMSI" {
            " (the user-assigned identity's client id, with MicrosoftAppType=UserAssignedMSI)"
        } else {
            ""
        };
        let app_id = self.client_id(&f, id_why)?;
        let mut draft = draft(
            Dialect::BotFramework,
            app_id,
            &f.key(To::ClientId),
            &f.key(To::TenantId),
            &f.key(To::Secret),
        );
        let tenant = match (f.get(To::TenantId), app_type) {
            (Some(t), _) => Some(t.to_owned()),
            (None, _) if f.has(To::AuthorityWithTenant) => None,
            // Legacy multi-tenant bots get their tokens from the botframework.com tenant.
            (None, "MultiTenant") => Some("botframework.com".to_owned()),
            (None, _) => {
                return Err(Error::config(
                    f.key(To::TenantId),
                    format!(
                        "is required when MicrosoftAppType is {app_type}: set it to the bot's tenant \
                         (directory) id"
                    ),
                ));
            }
        };
        draft.config.tenant_id = tenant;
        self.common(&mut draft, &f)?;
        if let Some(callers) = Some(f.list(To::SkillCallers)).filter(|c| !c.is_empty()) {
            // Bot Framework semantics: the list names the bots allowed to call this one as a skill.
            draft.config.inbound.allowed_callers = callers;
            draft.config.inbound.skills = true;
        }
        let credentials = &mut draft.config.credentials;
        if app_type == "UserAssignedMSI" {
            credentials.push(self.credential(
                Kind::UserManagedIdentity,
                app_type,
                &f,
                None,
                app_id,
            )?);
            return Ok(draft);
        }
        if f.has(To::KeyPathOrPem) || f.has(To::CertPath) || f.has(To::Thumbprint) {
            credentials.push(self.credential(
                Kind::Certificate,
                "a certificate",
                &f,
                None,
                app_id,
            )?);
        }
        if f.has(To::Secret) {
            credentials.push(self.credential(Kind::Secret, "a client secret", &f, None, app_id)?);
        }
        if credentials.is_empty() && !self.key_vault_override_set() {
            return Err(Error::config(
                f.key(To::Secret),
                "is required: set it to the client secret's value (not its id), or configure a certificate \
                 (CertificatePrivateKey/CertificateThumbprint), or set MicrosoftAppType=UserAssignedMSI",
            ));
        }
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Microsoft.Identity.Web

    pub(super) fn identity_web(&mut self) -> Result<Draft> {
        let f = self.scan(&IDENTITY_WEB, IDENTITY_WEB.prefix)?;
        let client_id = self.client_id(&f, "")?;
        let mut draft = draft(
            Dialect::IdentityWeb,
            client_id,
            &f.key(To::ClientId),
            &f.key(To::TenantId),
            "AzureAd__ClientCredentials",
        );
        draft.config.tenant_id = f.get(To::TenantId).map(str::to_owned);
        self.common(&mut draft, &f)?;
        if draft.config.tenant_id.is_none() {
            f.require(To::TenantId, "")?;
        }
        let send_x5c = f.bool(To::SendX5c)?;

        // ClientCredentials__{n}__{Field}: ordered by n numerically, gaps allowed.
        let mut indexes: Vec<(u64, String)> = Vec::new();
        for (_, name) in self.children("AzureAd__ClientCredentials__") {
            let n = name
                .parse()
                .ok()
                .filter(|_| name.bytes().all(|b| b.is_ascii_digit()));
            let n = n.ok_or_else(|| {
                Error::config(
                    format!("AzureAd__ClientCredentials__{name}"),
                    "ClientCredentials entries are indexed by numbers: use AzureAd__ClientCredentials__0__SourceType, \
                     AzureAd__ClientCredentials__1__SourceType, …",
                )
            })?;
            indexes.push((n, name));
        }
        indexes.sort();
        for (_, name) in indexes {
            let e = self.scan(
                &IDENTITY_WEB_CREDENTIAL,
                &format!("AzureAd__ClientCredentials__{name}__"),
            )?;
            if e.bool(To::Skip)?.unwrap_or(false) {
                continue;
            }
            let source = e.require(
                To::Kind,
                &format!(" (one of {})", names(IDENTITY_WEB_SOURCE_TYPES, true)),
            )?;
            let choice = pick(
                IDENTITY_WEB_SOURCE_TYPES,
                source,
                &e.key(To::Kind),
                "SourceType",
            )?;
            self.requires(choice, &e, "SourceType")?;
            let what = format!("SourceType {}", choice.name);
            let credential = self.credential(choice.kind, &what, &e, send_x5c, client_id)?;
            draft.config.credentials.push(credential);
        }
        // The flat legacy `ClientSecret` is merged in after the list, as Identity.Web does.
        if f.has(To::Secret) {
            let secret = self.credential(Kind::Secret, "ClientSecret", &f, None, client_id)?;
            draft.config.credentials.push(secret);
        }
        if draft.config.credentials.is_empty() && !self.key_vault_override_set() {
            return Err(Error::config(
                "AzureAd__ClientCredentials",
                format!(
                    "no client credential is configured: add AzureAd__ClientCredentials__0__SourceType ({}) \
                     with its settings",
                    names(IDENTITY_WEB_SOURCE_TYPES, true)
                ),
            ));
        }
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Microsoft 365 Agents SDK

    pub(super) fn agents(&mut self) -> Result<Draft> {
        let names = self.children("Connections__");
        // Every key under Connections__{name}__ must be under its Settings section.
        for (key, rest, _) in self.env.with_prefix_ci("Connections__") {
            let mut parts = rest.splitn(3, "__");
            let (_, section) = (parts.next(), parts.next().unwrap_or_default());
            if section != "settings" {
                self.warnings.push(format!(
                    "{key} is not a key botauth knows: connection settings go under \
                     Connections__<name>__Settings__ (did you mean Settings?)"
                ));
            }
        }
        let mut map = Vec::new();
        let mut map_keys = Vec::new();
        let mut indexes: Vec<(u64, String)> = self
            .children("ConnectionsMap__")
            .into_iter()
            .map(|(_, n)| (n.parse().unwrap_or(u64::MAX), n))
            .collect();
        indexes.sort();
        for (_, i) in indexes {
            let m = self.scan(&AGENTS_MAP, &format!("ConnectionsMap__{i}__"))?;
            let connection = m.require(To::MapConnection, "")?;
            let known = names.iter().any(|(c, _)| *c == comparable_name(connection));
            if !known {
                let list: Vec<&str> = names.iter().map(|(_, n)| n.as_str()).collect();
                return Err(Error::config(
                    m.key(To::MapConnection),
                    format!(
                        "names no configured connection: the connections are {}",
                        list.join(", ")
                    ),
                ));
            }
            let mut entry =
                ConnectionMapEntry::new(m.get(To::MapServiceUrl).unwrap_or("*"), connection);
            entry.audience = m.get(To::MapAudience).map(str::to_owned);
            map_keys.push(m.key(To::MapServiceUrl));
            map.push(entry);
        }
        // The default connection: the first `*` rule without an audience, else the first name.
        let default = map
            .iter()
            .find(|e| matches!(e.service_url.as_str(), "*" | "") && e.audience.is_none())
            .map(|e| comparable_name(&e.connection))
            .or_else(|| names.first().map(|(c, _)| c.clone()))
            .ok_or_else(no_configuration)?;
        let mut draft = None;
        let mut others = Vec::new();
        for (comparable, name) in &names {
            let d = self.connection(name)?;
            if *comparable == default {
                draft = Some(d);
            } else {
                others.push(d);
            }
        }
        let mut draft = draft.ok_or_else(no_configuration)?;
        for other in others {
            let mut c = ConnectionConfig::new(other.config.connection_name.unwrap_or_default());
            c.client_id = other.config.client_id;
            c.tenant_id = other.config.tenant_id;
            c.cloud = match other.authority {
                Some(host) => other.config.cloud.with_authority_host(host),
                None => other.config.cloud,
            };
            c.credentials = other.config.credentials;
            c.scopes = other.config.scopes;
            draft.config.connections.push(c);
            draft.connection_keys.push(other.keys);
        }
        for entry in &mut map {
            // Map entries name connections as the connections spell them.
            let wanted = comparable_name(&entry.connection);
            if let Some((_, spelled)) = names.iter().find(|(c, _)| *c == wanted) {
                entry.connection.clone_from(spelled);
            }
        }
        draft.config.connections_map = map;

        let t = self.scan(&AGENTS_TOKEN_VALIDATION, AGENTS_TOKEN_VALIDATION.prefix)?;
        self.common(&mut draft, &t)?;
        let client_id = draft.config.client_id.clone().unwrap_or_default();
        let inbound = &mut draft.config.inbound;
        for audience in t.list(To::Audiences) {
            if !audience.eq_ignore_ascii_case(&client_id)
                && !inbound.extra_audiences.contains(&audience)
            {
                inbound.extra_audiences.push(audience);
            }
        }
        if let Some(tenant) = t.get(To::InboundTenant) {
            check_tenant(tenant, &t.key(To::InboundTenant))?;
            inbound.entra_tenants.push(tenant.to_owned());
        }
        if let Some(on) = t.bool(To::BotServiceTokens)? {
            inbound.bot_service = on;
        }
        let callers = t.list(To::AllowedCallers);
        if !callers.is_empty() {
            // Agents semantics: `*` or an empty list allows every caller.
            inbound.allowed_callers = callers;
        }
        let f = self.scan(&AGENTS_CLIENT_FACTORY, AGENTS_CLIENT_FACTORY.prefix)?;
        self.common(&mut draft, &f)?;
        Ok(draft)
    }

    /// One `Connections__{name}__Settings` section, with its key names.
    pub(super) fn connection(&mut self, name: &str) -> Result<Draft> {
        let f = self.scan(
            &AGENTS_CONNECTION,
            &format!("Connections__{name}__Settings__"),
        )?;
        // .NET defaults AuthType to ClientSecret; the JavaScript SDK infers it from the keys set.
        let auth_type = match f.get(To::Kind) {
            Some(t) => t,
            None if f.has(To::TokenFile) => "WorkloadIdentity",
            None if f.has(To::FederatedClientId) => "FederatedCredentials",
            None if f.has(To::CertPath) && !f.has(To::Secret) => "Certificate",
            None => "ClientSecret",
        };
        let choice = pick(AGENTS_AUTH_TYPES, auth_type, &f.key(To::Kind), "AuthType")?;
        let client_id = self.client_id(&f, "")?;
        let mut draft = draft(
            Dialect::AgentsSdk,
            client_id,
            &f.key(To::ClientId),
            &f.key(To::TenantId),
            &f.key(To::Kind),
        );
        draft.config.connection_name = Some(name.to_owned());
        draft.config.tenant_id = f.get(To::TenantId).map(str::to_owned);
        self.common(&mut draft, &f)?;
        let managed = matches!(
            choice.kind,
            Kind::UserManagedIdentity | Kind::SystemManagedIdentity | Kind::Refused(_)
        );
        if draft.config.tenant_id.is_none() && !managed {
            return Err(Error::config(
                f.key(To::TenantId),
                format!(
                    "is required for AuthType {}: set it to the bot's tenant (directory) id",
                    choice.name
                ),
            ));
        }
        self.requires(choice, &f, "AuthType")?;
        let send_x5c = f.bool(To::SendX5c)?;
        let what = format!("AuthType {}", choice.name);
        let credential = self.credential(choice.kind, &what, &f, send_x5c, client_id)?;
        draft.config.credentials.push(credential);
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Workload identity

    pub(super) fn workload_identity(&mut self) -> Result<Draft> {
        let f = self.scan(&WORKLOAD_IDENTITY, "")?;
        let client_id = self.client_id(&f, "")?;
        let mut draft = draft(
            Dialect::WorkloadIdentity,
            client_id,
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
        );
        draft.config.tenant_id = Some(f.require(To::TenantId, "")?.to_owned());
        self.common(&mut draft, &f)?;
        f.require(
            To::TokenFile,
            " (the AKS workload identity webhook sets it)",
        )?;
        let credential =
            self.credential(Kind::Workload, "workload identity", &f, None, client_id)?;
        draft.config.credentials.push(credential);
        Ok(draft)
    }
}
