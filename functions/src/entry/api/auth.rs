//! WHO MAY DO WHAT: the caller of an HTTP request, from the claims API
//! Gateway's JWT authorizer verified, and the scope each route needs. No I/O.
//!
//! - The tenant is the claim named by `TENANT_CLAIM` (default `tenant`).
//!   Every key the store reads or writes is scoped by it, so another
//!   tenant's resources are simply not there: 404, never 403.
//! - Scopes (`scope`/`scp` claims, which the authorizer lists) separate
//!   reading, writing and cancelling: `courier/read`, `courier/write`,
//!   `courier/cancel`. Write and cancel do not imply read.
//! - Local mode (`LOCAL_DEV_IDENTITY=on`, set only by `make run` and the
//!   tests, never by the template) accepts a development identity without a
//!   JWT: the `x-courier-dev-tenant` header (default `default`) with every
//!   scope, or those listed in `x-courier-dev-scopes`. Outside local mode
//!   those headers are refused with 401, so a misconfigured deployment fails
//!   loudly instead of trusting a header.

use crate::error::ServiceError;
use courier_core::TenantId;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::collections::BTreeSet;

/// The name of [`default_tenant`].
pub const DEFAULT_TENANT: &str = "default";
pub const DEV_TENANT_HEADER: &str = "x-courier-dev-tenant";
pub const DEV_SCOPES_HEADER: &str = "x-courier-dev-scopes";

/// The tenant of requests made without one (local mode), and the view a
/// device's request starts from before its thing's owner is known.
pub fn default_tenant() -> TenantId {
    TenantId::parse(DEFAULT_TENANT).expect("a valid tenant id")
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Cancel,
}

impl Scope {
    pub const ALL: [Self; 3] = [Self::Read, Self::Write, Self::Cancel];

    /// The OAuth scope string, as a Cognito resource server `courier` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "courier/read",
            Self::Write => "courier/write",
            Self::Cancel => "courier/cancel",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw || s.as_str().trim_start_matches("courier/") == raw)
    }
}

/// How callers are identified (from the environment, see `Config`).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The JWT claim that names the tenant.
    pub tenant_claim: String,
    /// Accept the development identity headers (local mode only).
    pub local_dev_identity: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            tenant_claim: "tenant".into(),
            local_dev_identity: false,
        }
    }
}

/// The verified caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    /// Who, for the record (`canceledBy`): the JWT `sub`.
    pub subject: String,
    pub scopes: BTreeSet<Scope>,
}

impl Principal {
    /// Refuses with 403 unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ServiceError::MissingScope(scope.as_str()))
        }
    }
}

impl AuthSettings {
    /// The caller of `request`: from the JWT authorizer's claims, else (local
    /// mode only) the development identity. 401 when there is neither, or
    /// when development headers arrive outside local mode; 403 when the token
    /// names no valid tenant.
    pub fn authenticate(&self, request: &Request) -> Result<Principal, ServiceError> {
        let dev_tenant = header(request, DEV_TENANT_HEADER);
        let dev_scopes = header(request, DEV_SCOPES_HEADER);
        if let Some((claims, scopes)) = jwt(request) {
            let raw = claims.get(&self.tenant_claim).ok_or_else(|| {
                ServiceError::AccessDenied(format!(
                    "the token has no {} claim naming a tenant",
                    courier_core::text::quote(&self.tenant_claim)
                ))
            })?;
            let tenant = TenantId::parse(raw).map_err(|e| {
                ServiceError::AccessDenied(format!(
                    "the token's tenant claim is not a tenant id: {}",
                    e.message
                ))
            })?;
            let mut granted: Vec<String> = scopes.unwrap_or_default();
            // Tokens whose scopes the authorizer did not list (`scope` claim).
            if let Some(scope) = claims.get("scope") {
                granted.extend(scope.split_whitespace().map(str::to_owned));
            }
            return Ok(Principal {
                tenant,
                subject: claims
                    .get("sub")
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
                scopes: granted.iter().filter_map(|s| Scope::parse(s)).collect(),
            });
        }
        if !self.local_dev_identity {
            return Err(ServiceError::Unauthenticated(
                if dev_tenant.is_some() || dev_scopes.is_some() {
                    "development identity headers are accepted only in local mode; send a JWT"
                } else {
                    "no verified identity: call through the API's JWT authorizer"
                }
                .into(),
            ));
        }
        let tenant = match dev_tenant {
            Some(raw) => TenantId::parse_at(&raw, DEV_TENANT_HEADER)
                .map_err(|e| ServiceError::Validation(e.into()))?,
            None => default_tenant(),
        };
        let scopes = match dev_scopes {
            Some(raw) => raw
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .filter_map(Scope::parse)
                .collect(),
            None => Scope::ALL.into_iter().collect(),
        };
        Ok(Principal {
            tenant,
            subject: "developer".into(),
            scopes,
        })
    }
}

type Claims = std::collections::HashMap<String, String>;

fn jwt(request: &Request) -> Option<(Claims, Option<Vec<String>>)> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| (jwt.claims.clone(), jwt.scopes.clone())),
        _ => None,
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
