//! THE CONTRACT: the API's OpenAPI 3.1 document (`openapi.json` beside this
//! file), served at `GET /openapi.json` without authentication. It cannot
//! drift: the test harness checks every answer the API tests receive
//! against it (`courier_tests::openapi`), and Schemathesis fuzzes the local
//! stack from it in `make test`. No I/O.

/// The document, as written in the repository.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The reply to `GET /openapi.json`.
pub fn reply() -> super::reply::Reply {
    super::reply::Reply::raw_json(200, DOCUMENT)
}
