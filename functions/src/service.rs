//! What Courier does, independent of how it is called: the operations behind
//! the HTTP routes and the device events, generic over [`Store`]. Validation
//! and rules come from courier-core; I/O goes through the store only.

use crate::error::ServiceError;
use crate::ids;
use crate::page_token::PageTokens;
use crate::store::{
    CreateOutcome, ExecutionQuery, ExecutionsOf, Page, PageRequest, PutOutcome, Store, StoreError,
    TransitionOutcome,
};
use courier_core::{
    Actor, CommandDefinition, CommandExecution, CommandId, ExecutionId, ExecutionStatus,
    LateResult, StartExecution, StatusUpdate, TenantId, ThingName, Timestamp, TransitionError,
    TransitionPlan, ValidationCode, ValidationErrors, Validator,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const DEFAULT_PAGE_SIZE: u32 = 25;
pub const MAX_PAGE_SIZE: u32 = 100;

/// The service for one tenant: that tenant's view of the store, the
/// page-token key, and a cache of compiled command definitions shared by
/// every tenant's view. Definitions are immutable, so a cached one is never
/// stale and a warm function starts executions without reading the command.
#[derive(Debug)]
pub struct Courier<S> {
    store: S,
    tokens: PageTokens,
    validators: Arc<Mutex<ValidatorCache>>,
}

/// Compiled command definitions by tenant and command id.
type ValidatorCache = HashMap<(TenantId, CommandId), Arc<Validator>>;

/// A page as callers see it: items and an opaque `nextToken`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Filters and paging of `GET /executions`, as strings from the query.
#[derive(Debug, Clone, Default)]
pub struct ListExecutions {
    pub target: Option<String>,
    pub command_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub next_token: Option<String>,
}

/// What StartNextPendingJobExecution returned: the execution, and whether
/// this request moved it to IN_PROGRESS (so the device's pending list changed).
#[derive(Debug, Clone, PartialEq)]
pub struct NextExecution {
    pub execution: CommandExecution,
    pub claimed: bool,
}

/// One delivery of a device message, as the device path recognises it when
/// it comes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The Lambda request id: stable across Lambda's retries of one event.
    /// An update's `clientToken` takes its place where there is one.
    pub request_id: &'a str,
    /// When IoT Core received the message (the rule's `timestamp()`), where
    /// the rule passes it: an update older than one already applied is stale.
    pub received_at: Option<Timestamp>,
}

impl<'a> Delivery<'a> {
    /// A delivery known only by its request id.
    pub fn new(request_id: &'a str) -> Self {
        Self {
            request_id,
            received_at: None,
        }
    }
}

/// What a device update did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceUpdateOutcome {
    /// Written; `previous` is the status before it.
    Applied {
        execution: CommandExecution,
        previous: ExecutionStatus,
    },
    Duplicate(CommandExecution),
}

impl<S: Store> Courier<S> {
    pub fn new(store: S, tokens: PageTokens) -> Self {
        Self {
            store,
            tokens,
            validators: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The tenant this service acts for.
    pub fn tenant(&self) -> &TenantId {
        self.store.tenant()
    }

    /// The same service acting for `tenant` (cheap: clients and caches are
    /// shared). Every key it touches is scoped to that tenant.
    pub fn for_tenant(&self, tenant: &TenantId) -> Self {
        Self {
            store: self.store.for_tenant(tenant),
            tokens: self.tokens.clone(),
            validators: Arc::clone(&self.validators),
        }
    }

    /// `POST /commands`. Returns the stored definition and whether it was
    /// created now (false: the same definition existed, an idempotent retry).
    pub async fn create_command(
        &self,
        body: &Value,
        now: Timestamp,
    ) -> Result<(CommandDefinition, bool), ServiceError> {
        let mut definition: CommandDefinition =
            serde_json::from_value(body.clone()).map_err(|e| {
                ServiceError::validation(
                    "",
                    ValidationCode::InvalidValue,
                    format!("not a command definition: {e}"),
                )
            })?;
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

    /// `POST /commands/{commandId}/executions`. Returns the execution and
    /// whether it was created now (false: an idempotent retry).
    pub async fn start_execution(
        &self,
        command_id: &str,
        body: &Value,
        now: Timestamp,
    ) -> Result<(CommandExecution, bool), ServiceError> {
        let validator = self.validator(command_id).await?;
        let start = StartExecution::parse(body, &validator, now)?;
        let request_hash = ids::fingerprint(
            serde_json::json!([
                validator.definition().command_id,
                start.target,
                start.parameters,
                start.execution_timeout_seconds,
                start.time_to_live,
            ])
            .to_string()
            .as_bytes(),
        );
        let id = match &start.client_token {
            Some(token) => ids::execution_id_for_token(token),
            None => ids::random_execution_id(),
        };
        let execution = start.into_execution(id, &validator, now);
        // A thing belongs to the first tenant that targets it; to every other
        // tenant it does not exist.
        let ours = self
            .store
            .claim_things(std::slice::from_ref(&execution.target))
            .await?;
        if ours.first() != Some(&true) {
            return Err(ServiceError::NotFound {
                what: "thing",
                id: execution.target.to_string(),
            });
        }
        match self.store.create_execution(&execution, &request_hash).await? {
            CreateOutcome::Created(created) => {
                tracing::info!(execution_id = %created.execution_id, command_id = %created.command_id, target = %created.target, "execution created");
                Ok((created, true))
            }
            CreateOutcome::Existing { execution, same_request: true } => Ok((execution, false)),
            CreateOutcome::Existing { .. } => Err(ServiceError::Conflict(
                "clientToken was already used for a different request; use a new token for a new execution".into(),
            )),
        }
    }

    pub async fn get_execution(
        &self,
        raw_id: &str,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let id = ExecutionId::parse_at(raw_id, "executionId").map_err(ValidationErrors::from)?;
        self.store
            .get_execution(&id, now)
            .await?
            .map(|e| e.observed(now))
            .ok_or_else(|| ServiceError::NotFound {
                what: "execution",
                id: id.to_string(),
            })
    }

    /// `GET /executions?target=|commandId=&status=&limit=&nextToken=`.
    pub async fn list_executions(
        &self,
        params: &ListExecutions,
        now: Timestamp,
    ) -> Result<Listing<CommandExecution>, ServiceError> {
        let mut errors = ValidationErrors::new();
        let of = match (&params.target, &params.command_id) {
            (Some(t), None) => errors
                .collect(ThingName::parse_at(t, "target"))
                .map(ExecutionsOf::Target),
            (None, Some(c)) => errors
                .collect(CommandId::parse_at(c, "commandId"))
                .map(ExecutionsOf::Command),
            (Some(_), Some(_)) | (None, None) => {
                errors.add(
                    "target",
                    ValidationCode::MissingRequired,
                    "give exactly one of target or commandId",
                );
                None
            }
        };
        let status = match params.status.as_deref() {
            None => None,
            Some(raw) => {
                let parsed = ExecutionStatus::parse(raw);
                if parsed.is_none() {
                    let all: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
                    errors.add(
                        "status",
                        ValidationCode::InvalidValue,
                        format!("{raw:?} is not a status; use one of {}", all.join(", ")),
                    );
                }
                parsed
            }
        };
        let Some(of) = of else {
            return Err(errors.into());
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let query = ExecutionQuery { of, status };
        let scope = format!("executions?{:?}&{:?}", query.of, query.status);
        let page = self.page_request(
            &scope,
            params.limit.as_deref(),
            params.next_token.as_deref(),
        )?;
        // A thing is another tenant's, or nobody's, alike: not found (no
        // existence oracle). So is a command this tenant does not have.
        match &query.of {
            ExecutionsOf::Target(thing) => {
                if self.store.thing_owner(thing).await?.as_ref() != Some(self.tenant()) {
                    return Err(ServiceError::NotFound {
                        what: "thing",
                        id: thing.to_string(),
                    });
                }
            }
            ExecutionsOf::Command(command) => {
                self.validator(command.as_str()).await?;
            }
        }
        let mut page = self.store.list_executions(&query, page, now).await?;
        for e in &mut page.items {
            *e = e.observed(now);
            e.redacted_parameters = self.redact(&e.command_id, &mut e.parameters).await;
        }
        Ok(self.listing(&scope, page))
    }

    /// Leaves the values of sensitive parameters (see
    /// `ParameterSpec::sensitive`) of command `command_id` out of
    /// `parameters`, for a listing, and returns their names. Should the
    /// definition be unreadable, every parameter is left out rather than risk
    /// showing a secret.
    pub(crate) async fn redact(
        &self,
        command_id: &CommandId,
        parameters: &mut courier_core::Parameters,
    ) -> Vec<courier_core::ParameterName> {
        match self.validator(command_id.as_str()).await {
            Ok(validator) => validator.redact(parameters),
            Err(err) => {
                tracing::warn!(%command_id, code = err.code(), "definition unreadable; every parameter redacted");
                std::mem::take(parameters)
                    .into_keys()
                    .filter_map(|name| courier_core::ParameterName::parse(&name).ok())
                    .collect()
            }
        }
    }

    /// `POST /executions/{id}/cancel` by an operator (`caller` is who, for
    /// the record). Work the device has started needs `"force": true`; the
    /// device hears of the cancel from the dispatcher (table stream).
    /// Cancelling an already cancelled execution returns it unchanged (safe
    /// to retry).
    pub async fn cancel_execution(
        &self,
        raw_id: &str,
        body: &Value,
        caller: &str,
        now: Timestamp,
        request_id: &str,
    ) -> Result<CommandExecution, ServiceError> {
        let id = ExecutionId::parse_at(raw_id, "executionId").map_err(ValidationErrors::from)?;
        let (mut update, force) = if body.is_null() {
            (StatusUpdate::default(), false)
        } else {
            parse_cancel_body(body)?
        };
        update.status = Some(ExecutionStatus::Canceled);
        if update.status_reason.is_none() {
            update.status_reason = Some(courier_core::StatusReason {
                reason_code: "CANCELED_BY_OPERATOR".into(),
                reason_description: None,
            });
        }
        let token = update
            .client_token
            .as_ref()
            .map_or_else(|| request_id.to_owned(), ToString::to_string);
        let plan = TransitionPlan::cancel(update, caller, force, now);
        // At most twice: a cancel that finds a passed deadline enforces it
        // first; if that re-queued the execution as a new attempt, the cancel
        // applies to that attempt.
        for _ in 0..2 {
            match self.store.apply_transition(&id, &plan, &token).await {
                Ok(
                    TransitionOutcome::Applied { execution: e, .. }
                    | TransitionOutcome::Duplicate(e),
                ) => {
                    tracing::info!(execution_id = %e.execution_id, "execution canceled");
                    return Ok(e);
                }
                Err(StoreError::Rejected {
                    error:
                        TransitionError::TerminalStateReached {
                            status: ExecutionStatus::Canceled,
                        },
                    current,
                }) => return Ok(*current),
                Err(StoreError::Rejected {
                    error: TransitionError::DeadlinePassed { .. },
                    current,
                }) => {
                    let expired = self.expire_overdue(&current, None, now).await?;
                    if expired.status.is_terminal() {
                        return Err(ServiceError::Transition {
                            error: TransitionError::TerminalStateReached {
                                status: expired.status,
                            },
                            current: Some(Box::new(expired)),
                        });
                    }
                }
                Err(other) => return Err(ServiceError::for_execution(other, &id)),
            }
        }
        Err(ServiceError::Throttled(format!(
            "execution {id} kept changing while it was being canceled"
        )))
    }

    /// Applies the deadline that has passed on `current` (TIMED_OUT, or a
    /// new attempt), keeping `late` beside it, and returns the record after.
    /// If another writer got there first, returns the record as it is now.
    pub async fn expire_overdue(
        &self,
        current: &CommandExecution,
        late: Option<LateResult>,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let Some(mut plan) = courier_core::deadline::expire(current, now) else {
            return Ok(current.clone());
        };
        plan.late_result = late.filter(|_| plan.to == ExecutionStatus::TimedOut);
        let token = format!("expire:{}:{}", current.execution_id, current.version);
        match self
            .store
            .apply_transition(&current.execution_id, &plan, &token)
            .await
        {
            Ok(
                TransitionOutcome::Applied { execution, .. }
                | TransitionOutcome::Duplicate(execution),
            ) => {
                tracing::info!(execution_id = %execution.execution_id, status = %execution.status, reason = ?execution.status_reason, "deadline enforced");
                Ok(execution)
            }
            Err(StoreError::Rejected { current, .. }) => Ok(*current),
            Err(other) => Err(ServiceError::for_execution(other, &current.execution_id)),
        }
    }

    /// A device's status report (an IoT rule event). `thing` comes from the
    /// MQTT topic, so a device can only ever touch its own executions.
    /// A redelivery is recognised by the update's clientToken, else the
    /// invocation's request id, and by its receive time ([`Delivery`]).
    pub async fn device_update(
        &self,
        thing: &str,
        execution_id: &str,
        update: &Value,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<DeviceUpdateOutcome, ServiceError> {
        let mut errors = ValidationErrors::new();
        let thing = errors.collect(ThingName::parse_at(thing, "thingName"));
        let id = errors.collect(ExecutionId::parse_at(execution_id, "executionId"));
        let update = match StatusUpdate::parse(update) {
            Ok(u) => Some(u),
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        };
        let (Some(thing), Some(id), Some(update)) = (thing, id, update) else {
            return Err(errors.into());
        };
        let Some(to) = update.status else {
            return Err(ServiceError::validation(
                "status",
                ValidationCode::MissingRequired,
                "status is required",
            ));
        };
        let token = update
            .client_token
            .as_ref()
            .map_or_else(|| delivery.request_id.to_owned(), ToString::to_string);
        let late = LateResult::from_update(&update, now);
        let retry = if matches!(to, ExecutionStatus::Failed | ExecutionStatus::Rejected) {
            // A job's execution may be retried instead (see
            // `courier_core::job_run::retry_instead`): that needs the record.
            self.store
                .get_execution(&id, now)
                .await?
                .and_then(|current| courier_core::job_run::retry_instead(&current, &update, now))
        } else {
            None
        };
        let plan = TransitionPlan::new(update, to, Actor::Device, now)
            .map_err(|error| ServiceError::Transition {
                error,
                current: None,
            })?
            .for_target(thing.clone())
            .received_at(delivery.received_at);
        // The retry only replaces a report that would itself be accepted.
        let plan = match retry {
            Some(mut retry) => {
                retry.expected_version = plan.expected_version.or(retry.expected_version);
                retry.expected_execution_number = plan.expected_execution_number;
                retry.enforce_deadlines = true;
                retry.message_at = plan.message_at;
                retry
            }
            None => plan,
        };
        match self.store.apply_transition(&id, &plan, &token).await {
            Ok(TransitionOutcome::Applied {
                execution: e,
                previous,
            }) => {
                tracing::info!(execution_id = %e.execution_id, status = %e.status, version = e.version, "device update applied");
                Ok(DeviceUpdateOutcome::Applied {
                    execution: e,
                    previous,
                })
            }
            Ok(TransitionOutcome::Duplicate(e)) => {
                tracing::info!(execution_id = %e.execution_id, "redelivered device update ignored");
                Ok(DeviceUpdateOutcome::Duplicate(e))
            }
            // Too late: the deadline is enforced now (the sweeper has not got
            // to it yet), keeping the device's result beside the timeout.
            Err(StoreError::Rejected {
                error: TransitionError::DeadlinePassed { deadline },
                current,
            }) => {
                let expired = self.expire_overdue(&current, late, now).await?;
                tracing::info!(execution_id = %id, deadline = deadline.code(), "device update after a deadline");
                Err(ServiceError::Transition {
                    error: if expired.status.is_terminal() {
                        TransitionError::TerminalStateReached {
                            status: expired.status,
                        }
                    } else {
                        TransitionError::DeadlinePassed { deadline }
                    },
                    current: Some(Box::new(expired)),
                })
            }
            // Already timed out: the result is kept as a late result.
            Err(StoreError::Rejected {
                error:
                    error @ TransitionError::TerminalStateReached {
                        status: ExecutionStatus::TimedOut,
                    },
                current,
            }) => {
                let current = match late {
                    Some(late) => self
                        .store
                        .record_late_result(&id, &thing, &late, now)
                        .await?
                        .unwrap_or(*current),
                    None => *current,
                };
                Err(ServiceError::Transition {
                    error,
                    current: Some(Box::new(current)),
                })
            }
            Err(other) => Err(ServiceError::for_execution(other, &id)),
        }
    }

    /// A device's pending executions (GetPendingJobExecutions), oldest first.
    pub async fn pending(
        &self,
        thing: &str,
        now: Timestamp,
    ) -> Result<Vec<CommandExecution>, ServiceError> {
        let thing = ThingName::parse_at(thing, "thingName").map_err(ValidationErrors::from)?;
        self.visible_pending(&thing, now).await
    }

    /// What a device may see of its pending list: not held for `notBefore`,
    /// and not past a deadline (the sweeper will time those out).
    async fn visible_pending(
        &self,
        thing: &ThingName,
        now: Timestamp,
    ) -> Result<Vec<CommandExecution>, ServiceError> {
        let mut pending = self.store.pending_executions(thing, now).await?;
        pending.retain(|e| !e.is_held(now) && e.overdue(now).is_none());
        Ok(pending)
    }

    /// StartNextPendingJobExecution: claims the device's next pending
    /// execution and moves it to IN_PROGRESS, atomically. An execution already
    /// IN_PROGRESS is returned as it is (with `statusDetails` applied if
    /// sent). `None` when nothing is pending. The claim is a conditional write
    /// on the version just read; if another request or a cancel changed the
    /// list in between, it looks again.
    pub async fn start_next(
        &self,
        thing: &str,
        body: &Value,
        dedupe_token: &str,
        now: Timestamp,
    ) -> Result<Option<NextExecution>, ServiceError> {
        const ATTEMPTS: usize = 5;
        let thing = ThingName::parse_at(thing, "thingName").map_err(ValidationErrors::from)?;
        let update = parse_start_next_body(body)?;
        for _ in 0..ATTEMPTS {
            let pending = self.visible_pending(&thing, now).await?;
            let Some(next) = courier_core::protocol::next_pending(&pending) else {
                return Ok(None);
            };
            if next.status == ExecutionStatus::InProgress
                && update.status_details.is_none()
                && update.step_timeout_in_minutes.is_none()
            {
                return Ok(Some(NextExecution {
                    execution: next.clone(),
                    claimed: false,
                }));
            }
            let claim = StatusUpdate {
                expected_version: Some(next.version),
                ..update.clone()
            };
            let plan = TransitionPlan::new(claim, ExecutionStatus::InProgress, Actor::Device, now)
                .map_err(|error| ServiceError::Transition {
                    error,
                    current: None,
                })?
                .for_target(thing.clone());
            match self
                .store
                .apply_transition(&next.execution_id, &plan, dedupe_token)
                .await
            {
                Ok(TransitionOutcome::Applied {
                    execution: e,
                    previous,
                }) => {
                    tracing::info!(execution_id = %e.execution_id, target = %e.target, "next execution started");
                    let claimed = previous != e.status;
                    return Ok(Some(NextExecution {
                        execution: e,
                        claimed,
                    }));
                }
                // A redelivered claim: its notifications went out the first time.
                Ok(TransitionOutcome::Duplicate(e)) => {
                    return Ok(Some(NextExecution {
                        execution: e,
                        claimed: false,
                    }))
                }
                // Raced with another claim, an update or a cancel: look again.
                Err(StoreError::Rejected { .. } | StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(format!(
            "the pending list of {thing} kept changing for {ATTEMPTS} attempts"
        )))
    }

    pub(crate) fn page_request(
        &self,
        scope: &str,
        limit: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<PageRequest, ServiceError> {
        let mut errors = ValidationErrors::new();
        let limit = match limit {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    errors.add(
                        "limit",
                        ValidationCode::OutOfRange,
                        format!("limit must be 1 to {MAX_PAGE_SIZE}, got {raw:?}"),
                    );
                    DEFAULT_PAGE_SIZE
                }
            },
        };
        let start = match next_token {
            None | Some("") => None,
            Some(token) => match self.tokens.open(&self.token_scope(scope), token) {
                Ok(cursor) => Some(cursor),
                Err(e) => {
                    errors.add("nextToken", ValidationCode::InvalidValue, e.to_string());
                    None
                }
            },
        };
        errors
            .into_result(PageRequest { limit, start })
            .map_err(Into::into)
    }

    pub(crate) fn listing<T>(&self, scope: &str, page: Page<T>) -> Listing<T> {
        let scope = self.token_scope(scope);
        Listing {
            items: page.items,
            next_token: page.next.map(|cursor| self.tokens.seal(&scope, &cursor)),
        }
    }

    /// A nextToken is bound to the tenant and the query it came from: one
    /// replayed by another tenant, or on another query, does not open.
    fn token_scope(&self, scope: &str) -> String {
        format!("{}/{scope}", self.tenant())
    }
}

/// A StartNextPendingJobExecution body: optional statusDetails,
/// stepTimeoutInMinutes and clientToken.
fn parse_start_next_body(body: &Value) -> Result<StatusUpdate, ServiceError> {
    let mut map = match body {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map.clone(),
        _ => {
            return Err(ServiceError::validation(
                "",
                ValidationCode::InvalidJson,
                "the body must be a JSON object",
            ))
        }
    };
    map.retain(|key, _| {
        matches!(
            key.as_str(),
            "statusDetails" | "clientToken" | "stepTimeoutInMinutes"
        )
    });
    map.insert(
        "status".into(),
        Value::from(ExecutionStatus::InProgress.as_str()),
    );
    Ok(StatusUpdate::parse(&Value::Object(map))?)
}

/// The part every cancel body shares (an execution's, a job's): a JSON
/// object (or nothing) with only `allowed` fields and an optional boolean
/// `force`. Returns the fields, `force`, and the problems found so far.
pub(crate) fn parse_cancel_fields(
    body: &Value,
    allowed: &[&str],
) -> Result<(serde_json::Map<String, Value>, bool, ValidationErrors), ServiceError> {
    let map = match body {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map.clone(),
        _ => {
            return Err(ServiceError::validation(
                "",
                ValidationCode::InvalidJson,
                "the body must be a JSON object",
            ))
        }
    };
    let mut errors = ValidationErrors::new();
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.add(
                key.as_str(),
                ValidationCode::UnknownField,
                format!("cancel takes {}", allowed.join(", ")),
            );
        }
    }
    let force = match map.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.add(
                "force",
                ValidationCode::WrongType,
                format!("expected true or false, got {other}"),
            );
            false
        }
    };
    Ok((map, force, errors))
}

/// An operator's cancel body: optional expectedVersion, statusReason,
/// clientToken and force.
fn parse_cancel_body(body: &Value) -> Result<(StatusUpdate, bool), ServiceError> {
    let (map, force, mut errors) = parse_cancel_fields(
        body,
        &["expectedVersion", "statusReason", "clientToken", "force"],
    )?;
    let mut with_status = map.clone();
    with_status.remove("force");
    with_status.insert(
        "status".into(),
        Value::from(ExecutionStatus::Canceled.as_str()),
    );
    match StatusUpdate::parse(&Value::Object(with_status)) {
        Ok(update) => errors.into_result((update, force)).map_err(Into::into),
        Err(e) => {
            errors.0.extend(e.0);
            Err(errors.into())
        }
    }
}
