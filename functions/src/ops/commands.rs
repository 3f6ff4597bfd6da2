//! COMMANDS: create, get and list command definitions, and the cache of
//! compiled validators every other operation validates with. Definitions
//! are immutable, so a cached one is never stale. I/O through the store.

use super::{Courier, Listing};
use crate::error::ServiceError;
use crate::store::{PutOutcome, Store};
use courier_core::json::Json;
use courier_core::{
    CommandDefinition, CommandId, ParameterName, Parameters, Timestamp, ValidationErrors, Validator,
};
use std::sync::Arc;

impl<S: Store> Courier<S> {
    /// `POST /commands`. Returns the stored definition and whether it was
    /// created now (false: the same definition existed, an idempotent retry).
    pub async fn create_command(
        &self,
        body: &Json,
        now: Timestamp,
    ) -> Result<(CommandDefinition, bool), ServiceError> {
        let mut definition = CommandDefinition::from_json(body)?;
        definition.created_at = None;
        definition.validator()?;
        let mut stored = definition.clone();
        stored.created_at = Some(now);
        match self.store.put_command(&stored).await? {
            PutOutcome::Created(created) => {
                tracing::info!(command_id = %created.command_id, "command created");
                Ok((created, true))
            }
            PutOutcome::Existing(existing) => {
                let mut comparable = existing.clone();
                comparable.created_at = None;
                if comparable == definition {
                    Ok((existing, false))
                } else {
                    Err(ServiceError::Conflict(format!(
                        "command {} exists with a different definition; definitions are immutable, create a new command id",
                        existing.command_id
                    )))
                }
            }
        }
    }

    pub async fn get_command(&self, raw_id: &str) -> Result<CommandDefinition, ServiceError> {
        Ok(self.validator(raw_id).await?.definition().clone())
    }

    /// The compiled definition, from the cache or the store.
    pub(crate) async fn validator(&self, raw_id: &str) -> Result<Arc<Validator>, ServiceError> {
        let id = CommandId::parse_at(raw_id, "commandId").map_err(ValidationErrors::from)?;
        let key = (self.tenant().clone(), id);
        if let Some(cached) = self
            .validators
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned())
        {
            return Ok(cached);
        }
        let (_, id) = key;
        let definition =
            self.store
                .get_command(&id)
                .await?
                .ok_or_else(|| ServiceError::NotFound {
                    what: "command",
                    id: id.to_string(),
                })?;
        let validator = Arc::new(definition.validator().map_err(|e| {
            ServiceError::Internal(format!("stored definition {id} is invalid: {e}"))
        })?);
        if let Ok(mut cache) = self.validators.lock() {
            cache.insert((self.tenant().clone(), id), Arc::clone(&validator));
        }
        Ok(validator)
    }

    pub async fn list_commands(
        &self,
        limit: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Listing<CommandDefinition>, ServiceError> {
        let scope = "commands";
        let page = self.page_request(scope, limit, next_token)?;
        let page = self.store.list_commands(page).await?;
        Ok(self.listing(scope, page))
    }

    /// [`Self::redact`] for every execution of a listing.
    pub(crate) async fn redact_all(&self, executions: &mut [courier_core::CommandExecution]) {
        for e in executions {
            e.redacted_parameters = self.redact(&e.command_id, &mut e.parameters).await;
        }
    }

    /// Leaves the values of sensitive parameters (see
    /// `ParameterSpec::sensitive`) of command `command_id` out of
    /// `parameters`, for a listing, and returns their names. Should the
    /// definition be unreadable, every parameter is left out rather than risk
    /// showing a secret.
    pub(crate) async fn redact(
        &self,
        command_id: &CommandId,
        parameters: &mut Parameters,
    ) -> Vec<ParameterName> {
        match self.validator(command_id.as_str()).await {
            Ok(validator) => validator.redact(parameters),
            Err(err) => {
                tracing::warn!(%command_id, code = err.code().as_str(), "definition unreadable; every parameter redacted");
                std::mem::take(parameters)
                    .into_keys()
                    .filter_map(|name| ParameterName::parse(&name).ok())
                    .collect()
            }
        }
    }
}
