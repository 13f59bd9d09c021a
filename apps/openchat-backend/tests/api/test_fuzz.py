"""Schemathesis against the OpenAPI schema: every operation, with authentication on and off, gets
requests generated from the schema, valid and invalid ones. No answer may be a 5xx, and every
answer must be one the schema documents: its status code, content type, headers and body.

The chat runs on the scripted fake model (tests/fakes.py), so no engine is needed. The run is
bounded (a few examples per operation) and derandomized: the same cases on every run."""

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from app.core.config import Settings
from app.main import create_app
from tests.conftest import _fresh_postgres_database
from tests.fakes import FakeRegistry


def served_schema(auth_mode: str) -> Any:
    """The schema an app in this mode serves at /openapi.json (building it touches no database).
    Requests go to an app of each test's own (`target_*`), passed as `app=`: Schemathesis's
    fixture-based lazy schema would build one per test too, but does not run on pytest 9.2."""
    app_settings = Settings(_env_file=None, database_url="sqlite://", environment="test", auth_mode=auth_mode)  # type: ignore[call-arg]
    return schemathesis.openapi.from_dict(create_app(app_settings, FakeRegistry(app_settings)).openapi())


auth_off = served_schema("off")
auth_required = served_schema("required")

# What counts: no 5xx, each answer as documented, and invalid requests refused with a 4xx.
# `positive_data_acceptance` is left out: some requests that fit the schema are refused for
# reasons a JSON schema cannot say (the last message must be the user's, the model must exist,
# the conversation must be the caller's, the body must fit the size limit).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


class Target:
    """An app with its own database, and the headers every request to it carries."""

    def __init__(self, app: FastAPI, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers


@pytest.fixture
def target_auth_off(make_settings: Callable[..., Settings]) -> Target:
    app_settings = make_settings(auth_mode="off")
    return Target(create_app(app_settings, registry=FakeRegistry(app_settings)), {})


@pytest.fixture
def target_auth_required(make_settings: Callable[..., Settings], postgres_server: str) -> Target:
    # On PostgreSQL (auth off runs on SQLite): what one database accepts, the other may not.
    app_settings = make_settings(auth_mode="required", database_url=_fresh_postgres_database(postgres_server))
    app = create_app(app_settings, registry=FakeRegistry(app_settings))
    signup = auth_required["/api/v1/auth/signup"]["POST"].Case(
        body={"email": "fuzz@example.com", "password": "correct horse battery"}
    )
    response = signup.call(app=app)
    assert response.status_code == 201, response.text
    return Target(app, {"Authorization": f"Bearer {response.json()['access_token']}"})


# A few examples of each operation (besides the schema's boundary cases), the same on every run.
bounded = settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@auth_off.parametrize()
@bounded
def test_auth_off_every_operation_answers_as_documented_and_never_5xx(case: Any, target_auth_off: Target) -> None:
    case.call_and_validate(app=target_auth_off.app, checks=CHECKS)


@auth_required.parametrize()
@bounded
def test_auth_required_every_operation_answers_as_documented_and_never_5xx(
    case: Any, target_auth_required: Target
) -> None:
    case.call_and_validate(app=target_auth_required.app, headers=target_auth_required.headers, checks=CHECKS)


ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


@pytest.mark.parametrize("schema", [auth_off, auth_required], ids=["auth off", "auth required"])
def test_the_schema_documents_errors_in_the_error_shape_and_no_422(schema: Any) -> None:
    raw = schema.raw_schema
    documented = 0
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, f"{method} {path}: validation errors are answered 400"
            for status, response in responses.items():
                if path.startswith("/api/v1") and int(status) >= 400:
                    assert response["content"] == {"application/json": {"schema": ERROR_REF}}, (method, path, status)
                    documented += 1
                if status == "204":
                    assert "content" not in response, (method, path)
                if status == "429":
                    assert response["headers"]["Retry-After"]["required"] is True
            # Credentials are asked only when the server asks for them.
            assert ("security" in operation) == (
                schema is auth_required
                and path.startswith(
                    ("/api/v1/chat", "/api/v1/conversations", "/api/v1/auth/me", "/api/v1/export", "/api/v1/import")
                )
            ), (method, path)
    assert documented >= 30
    assert set(raw["paths"]["/api/v1/chat"]["post"]["responses"]) == {
        "200",
        "400",
        "401",
        "404",
        "413",
        "429",
        "500",
        "503",
    }
    assert "HTTPValidationError" not in raw["components"]["schemas"]
