"""Schemathesis hooks for `make test` (SCHEMATHESIS_HOOKS=hooks).

One filter, for the local emulator rather than for Courier: `cargo lambda
watch` (1.9) answers a function-URL request whose body is declared JSON but
is not UTF-8 with its own 500 (`trigger_router.rs`: `String::from_utf8` ->
`ServerError::StringBody`) without invoking the function, so such a request
would report a server error Courier never saw. API Gateway hands such bytes
to the function base64-encoded; the handler test
`a_body_that_is_not_utf8_is_a_400` (tests/tests/handlers.rs) sends exactly
that event and gets 400 InvalidJson.
"""

import schemathesis


def _utf8(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@schemathesis.hook
def filter_body(ctx, body):
    return _utf8(body)


@schemathesis.hook
def filter_case(ctx, case):
    return _utf8(case.body)


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    """Tokens are optional on the local stack, as the document says of it.

    On AWS, API Gateway's JWT authorizer refuses a request without a valid
    token before the function runs (infra/template.yaml); the local stack has
    no authorizer, and a request without one acts as the default tenant
    (`make run`). Fuzzing the local stack therefore treats the bearer token
    as optional; the security tests (tests/tests/security.rs,
    least_privilege.rs) cover tokens, scopes and tenants.
    """
    for methods in raw_schema.get("paths", {}).values():
        for operation in methods.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"] = [*operation["security"], {}]
    if raw_schema.get("security"):
        raw_schema["security"] = [*raw_schema["security"], {}]
