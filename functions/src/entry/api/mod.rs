//! THE HTTP API (the `api` Lambda): [`routes`] (THE ROUTES, and a
//! request's whole path), [`auth`] (who may do what), [`reply`] (bodies,
//! CORS, the one error-to-response mapping), [`openapi`] (the contract).
//! I/O only through the operations.

pub mod auth;
pub mod openapi;
pub mod reply;
pub mod routes;
