//! Environment dialect readers (placeholder: being written).
use std::collections::BTreeMap;

/// An injected environment.
#[derive(Debug, Clone, Default)]
pub struct EnvVars(BTreeMap<String, String>);
