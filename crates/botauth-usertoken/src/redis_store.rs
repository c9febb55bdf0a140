//! The Redis [`ExchangeStore`] (feature `redis`): one atomic `SET key 1 NX PX ttl` per claim.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use crate::error::UserTokenError;
use crate::store::ExchangeStore;

/// Teams SSO de-duplication shared by every replica through a Redis server. A claim is one
/// `SET {prefix}{key} 1 NX PX {ttl ms}`: atomic on the server, so exactly one replica wins, and
/// the key expires on its own.
#[derive(Clone)]
pub struct RedisExchangeStore {
    connection: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisExchangeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: not printed.
        f.debug_struct("RedisExchangeStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn store_error(e: &redis::RedisError) -> UserTokenError {
    // Redis errors name the command and the server's reply, never the URL or the value.
    UserTokenError::store(format!("Redis: {} ({:?})", e.category(), e.kind()))
}

impl RedisExchangeStore {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, `rediss://` for TLS); keys get
    /// the prefix `botauth:sso:`. The connection is re-established on its own after a failure.
    ///
    /// # Errors
    ///
    /// a [`UserTokenError`] of kind [`Store`](crate::UserTokenErrorKind::Store) when the URL is unusable or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, UserTokenError> {
        let client = redis::Client::open(url).map_err(|e| store_error(&e))?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(RedisExchangeStore {
            connection,
            prefix: "botauth:sso:".into(),
        })
    }

    /// Replaces the key prefix (several bots sharing one server).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[async_trait]
impl ExchangeStore for RedisExchangeStore {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, UserTokenError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut connection)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(reply.is_some())
    }
}
