//! THE OPERATIONS, by capability: what Courier does, independent of how it
//! is called, generic over [`Store`]. Each capability's operations are in
//! its own file, as `impl Courier` blocks; rules come from courier-core, I/O
//! goes through the store and the platform's publisher and thing groups.
//!
//! - [`commands`]: command definitions (create, get, list) and the cache of
//!   compiled validators
//! - [`executions`]: start, get, list and cancel executions
//! - [`device_jobs`]: THE DEVICE API — every AWS IoT Jobs request a device
//!   sends, from its topic to its answer (a device update's whole path)
//! - [`device_commands`]: the AWS IoT commands device API: a device's
//!   UpdateCommandExecution, from its topic to its answer
//! - [`device_updates`]: the changes a device makes to its executions
//!   (status reports, claiming its next one), for every device protocol
//! - [`delivery`]: what devices are offered and when (dispatch), deadlines
//!   enforced, the sweeper's pass; [`notifications`]: what a device is told
//!   (`notify`, `notify-next`) and the record of what it was told
//! - [`jobs`]: jobs (create, get, list, cancel) and [`job_runner`], the
//!   steps that carry a job out
//! - [`queue`]: a device's queue, listed in delivery order and cleared
//! - [`presence`]: devices' lifecycle events; a reconnecting device is told
//!   its pending work
//! - [`pipelines`]: pipelines and their runs (create, get, list, cancel,
//!   resume), [`pipeline_runner`]: a run's steps, [`pipeline_targets`]: a
//!   device's moves in a run
//! - [`targets`]: thing groups and fleet-index queries, checked and read
//! - [`artifacts`]: S3 placeholders in parameters, checked at creation and
//!   presigned whenever a document goes to a device
//! - [`page_token`]: sealed nextTokens
//!
//! This module holds the service type itself: one tenant's view, paging.

pub mod artifacts;
pub mod commands;
pub mod delivery;
pub mod device_commands;
pub mod device_jobs;
pub mod device_updates;
pub mod executions;
pub mod job_runner;
pub mod jobs;
pub mod notifications;
pub mod page_token;
pub mod pipeline_runner;
pub mod pipeline_targets;
pub mod pipelines;
pub mod presence;
pub mod queue;
pub mod targets;

use crate::error::ServiceError;
use crate::platform::presign::ArtifactSigner;
pub use crate::platform::publisher::OptionalMessages;
use crate::store::{Page, PageRequest, Store};
use courier_core::commands::CommandsTopics;
use courier_core::text::quote;
use courier_core::{CommandId, TenantId, ThingName, ValidationCode, ValidationErrors, Validator};
use page_token::PageTokens;
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
    pub(crate) validators: Arc<Mutex<ValidatorCache>>,
    /// Where the AWS IoT commands protocol's topics are.
    pub(crate) commands: Arc<CommandsTopics>,
    /// Per-tenant limits on pipeline runs.
    pub(crate) run_limits: RunLimits,
    /// How artifact placeholders become presigned URLs; `None`: no
    /// artifact buckets, placeholders refused.
    pub(crate) artifacts: Option<Arc<ArtifactSigner>>,
    /// Which of the messages no device needs to act may be left out.
    pub(crate) optional: OptionalMessages,
}

/// Per-tenant limits on pipeline runs (`PIPELINE_MAX_ACTIVE_RUNS`,
/// `PIPELINE_MAX_TARGETS`); beyond them a start is refused with
/// LimitExceededException.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Runs of one tenant that have not ended.
    pub max_active_runs: u32,
    /// Targets in one run (at most `courier_core::pipeline_run::MAX_RUN_TARGETS`).
    pub max_targets: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_active_runs: 20,
            max_targets: courier_core::pipeline_run::MAX_RUN_TARGETS as u64,
        }
    }
}

/// Compiled command definitions by tenant and command id.
pub(crate) type ValidatorCache = HashMap<(TenantId, CommandId), Arc<Validator>>;

/// A page as callers see it: items and an opaque `nextToken`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl<S: Store> Courier<S> {
    pub fn new(store: S, tokens: PageTokens) -> Self {
        Self {
            store,
            tokens,
            validators: Arc::new(Mutex::new(HashMap::new())),
            commands: Arc::new(CommandsTopics::default()),
            run_limits: RunLimits::default(),
            artifacts: None,
            optional: OptionalMessages::default(),
        }
    }

    /// The same service publishing only these of the optional messages.
    #[must_use]
    pub fn with_optional_messages(mut self, optional: OptionalMessages) -> Self {
        self.optional = optional;
        self
    }

    /// The same service presigning artifact placeholders with `signer`.
    #[must_use]
    pub fn with_artifacts(mut self, signer: ArtifactSigner) -> Self {
        self.artifacts = Some(Arc::new(signer));
        self
    }

    /// The same service with these limits on pipeline runs.
    #[must_use]
    pub fn with_run_limits(mut self, limits: RunLimits) -> Self {
        self.run_limits = limits;
        self
    }

    /// The same service with the commands protocol's topics at `topics`.
    #[must_use]
    pub fn with_commands(mut self, topics: CommandsTopics) -> Self {
        self.commands = Arc::new(topics);
        self
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
            commands: Arc::clone(&self.commands),
            run_limits: self.run_limits,
            artifacts: self.artifacts.clone(),
            optional: self.optional,
        }
    }

    /// A page request from the query's `limit` and `nextToken`; the token
    /// must have been sealed for the same `scope` (a stable description of
    /// the query, e.g. `executions?target=dev-1&status=`) and tenant.
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
                        format!("limit must be 1 to {MAX_PAGE_SIZE}, got {}", quote(raw)),
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

    /// The view of the tenant that owns `thing`, where a device's executions
    /// live; `None` when that is this view, or nobody owns the thing (it has
    /// no executions anywhere: creating one claims the thing first).
    pub(crate) async fn owners_view(
        &self,
        thing: &ThingName,
    ) -> Result<Option<Self>, ServiceError> {
        Ok(match self.store.thing_owner(thing).await? {
            Some(owner) if owner != *self.tenant() => Some(self.for_tenant(&owner)),
            Some(_) | None => None,
        })
    }

    /// Not found unless this tenant owns `thing`: another tenant's thing and
    /// nobody's are answered alike (no existence oracle).
    pub(crate) async fn require_own_thing(&self, thing: &ThingName) -> Result<(), ServiceError> {
        if self.store.thing_owner(thing).await?.as_ref() == Some(self.tenant()) {
            Ok(())
        } else {
            Err(ServiceError::NotFound {
                what: "thing",
                id: thing.to_string(),
            })
        }
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
