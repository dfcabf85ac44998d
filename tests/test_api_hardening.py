"""API hardening (issue 13): a cap on request bodies (413 before parsing, and while a streamed body is
read), errors that never echo the input, and one documented error shape with a stable ``code``.

The app runs against a real PostgreSQL database (as the other API tests) with a 2 MiB body cap, so a
1 MB hostile field still reaches validation while a 3 MB body does not.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from api_support import AUTH, PREFIX, database, service_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from backend.api.errors import install_error_handlers, validation_items
from backend.api.limits import BodySizeLimitMiddleware
from backend.api.main import create_app
from backend.api.schemas import MAX_LISTED_ERRORS, ErrorResponse
from backend.services import ServiceSettings
from backend.services.access import InvalidTokenError, ReadOnlyError
from backend.services.errors import (
    ConflictError,
    InvalidDataError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    UnavailableError,
)

pytestmark = pytest.mark.postgres

CAP = 2 * 1024 * 1024
ORIGIN = "http://localhost:8501"
CHUNK = 64 * 1024
CANDLE = {"timestamp": "2024-01-01T00:00:00Z", "open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0, "volume": 5.0}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_hardening")
    with database() as url:
        app = create_app(service_settings(url, tmp, api_max_body_bytes=CAP, cors_origins=ORIGIN))
        with TestClient(app) as client:
            yield app, client


def assert_error_shape(r: httpx.Response, status: int, code: str) -> dict:
    """``{"detail": str, "code": code}`` (+ ``errors`` only for validation errors), valid as ErrorResponse."""
    assert r.status_code == status, r.text[:500]
    body = r.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    assert set(body) == ({"detail", "code", "errors"} if code == "validation_error" else {"detail", "code"})
    ErrorResponse.model_validate(body)
    return body


async def _chunks(n: int, pulled: list[int]) -> AsyncIterator[bytes]:
    for _ in range(n):
        pulled.append(1)
        yield b" " * CHUNK


def _send_streamed(app: FastAPI, n_chunks: int, headers: dict[str, str]) -> tuple[httpx.Response, int, httpx.Request]:
    """POST /predict with a body of ``n_chunks`` chunks streamed through the ASGI app; how many were pulled."""
    pulled: list[int] = []

    async def go() -> tuple[httpx.Response, httpx.Request]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            request = client.build_request(
                "POST",
                f"{PREFIX}/predict",
                content=_chunks(n_chunks, pulled),
                headers={"Content-Type": "application/json", **headers},
            )
            response = await client.send(request)
            await response.aread()
            return response, request

    response, request = asyncio.run(go())
    return response, len(pulled), request


# --- the body cap ---------------------------------------------------------------------------------


def test_a_declared_length_over_the_cap_is_413_before_the_body_is_read(api):
    app, client = api
    n = (3 * CAP) // CHUNK
    r, pulled, request = _send_streamed(app, n, {"Content-Length": str(n * CHUNK)})
    assert request.headers["content-length"] == str(n * CHUNK)
    body = assert_error_shape(r, 413, "payload_too_large")
    assert str(CAP) in body["detail"] and r.headers["connection"] == "close"
    assert pulled == 0  # answered from the header alone: not one chunk of the body was asked for
    # the same through the test client (a plain bytes body with its Content-Length)
    r = client.post(f"{PREFIX}/predict", content=b"x" * (CAP + 1), headers={"Content-Type": "application/json"})
    assert_error_shape(r, 413, "payload_too_large")


def test_a_streamed_body_without_a_length_is_cut_off_at_the_cap(api):
    app, _ = api
    n = (8 * CAP) // CHUNK
    r, pulled, request = _send_streamed(app, n, {})
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    assert_error_shape(r, 413, "payload_too_large")
    # read up to the cap and one chunk more, never the 16 MiB sent
    assert CAP // CHUNK < pulled <= CAP // CHUNK + 2 < n


def test_a_body_within_the_cap_is_parsed_as_usual(api):
    app, _ = api
    r, pulled, _ = _send_streamed(app, 3, {})  # 192 KiB of spaces: no JSON value at all
    assert pulled == 3 and r.status_code == 422 and r.json()["code"] == "validation_error"


def test_413_carries_the_cors_headers(api):
    _, client = api
    r = client.post(f"{PREFIX}/predict", content=b"x" * (CAP + 1), headers={"Origin": ORIGIN})
    assert r.status_code == 413 and r.headers["access-control-allow-origin"] == ORIGIN


def _run_middleware(chunks: list[bytes], limit: int, headers: list[tuple[bytes, bytes]] | None = None):
    """The middleware alone over a bare ASGI app that reads every chunk (and handles no exception)."""
    received: list[int] = []
    sent: list[dict] = []
    read_by_app: list[int] = []
    queue = list(chunks)

    async def receive() -> dict:
        received.append(1)
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope, receive_, send_) -> None:
        more = True
        while more:
            message = await receive_()
            read_by_app.append(len(message["body"]))
            more = message["more_body"]
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": str(sum(read_by_app)).encode()})

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or []}
    asyncio.run(BodySizeLimitMiddleware(app, max_body_bytes=limit)(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body, len(received), sum(read_by_app)


def test_the_middleware_counts_the_chunks_it_passes_on():
    # 100 chunks of 1 KiB against a 10 KiB cap: 413 after the 11th chunk, the rest never asked for
    status, body, received, _ = _run_middleware([b"a" * 1024] * 100, limit=10 * 1024)
    assert status == 413 and received == 11
    assert json.loads(body)["code"] == "payload_too_large"
    # exactly at the cap passes through untouched
    status, body, received, read = _run_middleware([b"a" * 1024] * 10, limit=10 * 1024)
    assert (status, body, received, read) == (200, b"10240", 10, 10240)
    # a declared length over the cap: not one receive
    status, _, received, _ = _run_middleware([b"a"] * 3, limit=1024, headers=[(b"content-length", b"2048")])
    assert status == 413 and received == 0


def test_the_cap_is_a_setting(monkeypatch):
    monkeypatch.setenv("ML_API_MAX_BODY_BYTES", "65536")
    assert ServiceSettings().api_max_body_bytes == 65536
    monkeypatch.delenv("ML_API_MAX_BODY_BYTES")
    assert ServiceSettings().api_max_body_bytes == 8 * 1024 * 1024
    with pytest.raises(ValidationError):
        ServiceSettings(api_max_body_bytes=1023)


# --- errors never echo the input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_body",
    [
        lambda big: {"model_name": big, "candles": [CANDLE]},  # a 1 MB string where a name goes
        lambda big: {"candles": big},  # a 1 MB string where a list goes
        lambda big: {"candles": [{**CANDLE, "timestamp": big}]},  # ... where a time goes
        lambda big: {"candles": [CANDLE], big: 1},  # a 1 MB key (it would be the error's loc)
    ],
    ids=["name", "list", "timestamp", "key"],
)
def test_a_1mb_hostile_field_gets_a_small_422_without_the_input(api, make_body):
    _, client = api
    marker = uuid.uuid4().hex  # 32 characters that appear nowhere else
    big = (marker * (1024 * 1024 // len(marker)))[: 1024 * 1024]
    r = client.post(f"{PREFIX}/predict", json=make_body(big))
    assert_error_shape(r, 422, "validation_error")
    assert len(r.content) < 4096, len(r.content)
    if make_body("k") == {"candles": [CANDLE], "k": 1}:  # a key is where the error is: kept, clipped to 64
        assert big[:64] not in r.text and big[:63] + "…" in r.json()["errors"][0]["loc"]
    else:
        assert marker[:16] not in r.text


def test_malformed_json_is_a_small_422(api):
    _, client = api
    r = client.post(
        f"{PREFIX}/predict", content=b'{"candles": "' + b"z" * 1_000_000, headers={"Content-Type": "application/json"}
    )
    body = assert_error_shape(r, 422, "validation_error")
    assert len(r.content) < 4096 and "zzzzzzzz" not in r.text
    assert body["errors"][0]["type"] == "json_invalid"


def test_a_message_quoting_the_input_has_it_cut_out():
    value = "secret-looking-value-" + uuid.uuid4().hex
    errors = [
        {
            "type": "value_error",
            "loc": ("body", "x" * 500, 3),
            "msg": f"Value error, {value!r} is not allowed",
            "input": value,
            "ctx": {"error": ValueError(value)},
            "url": "https://errors.pydantic.dev/2/v/value_error",
        }
    ]
    [item] = validation_items(errors)
    assert set(item) == {"loc", "msg", "type"}
    assert value not in json.dumps(item) and "<input>" in item["msg"]
    assert len(item["loc"][1]) <= 64 and item["loc"][2] == 3


# --- one error shape with a stable code -----------------------------------------------------------


def test_a_validation_error_lists_loc_msg_type_only_and_at_most_20(api):
    _, client = api
    bad = {**CANDLE, "open": -1, "high": "x", "low": None, "volume": -5}
    r = client.post(f"{PREFIX}/predict", json={"candles": [bad] * 30})
    body = assert_error_shape(r, 422, "validation_error")
    assert len(body["errors"]) == MAX_LISTED_ERRORS
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
    assert body["errors"][0]["loc"][:3] == ["body", "candles", 0]
    assert body["detail"].startswith("120 invalid fields: body.candles.0.")  # counts all, lists 20
    one = assert_error_shape(client.get(f"{PREFIX}/jobs", params={"limit": 0}), 422, "validation_error")
    assert one["errors"] == [
        {"loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1", "type": "greater_than_equal"}
    ]
    assert one["detail"] == "1 invalid field: query.limit: Input should be greater than or equal to 1"


def test_a_missing_model_is_not_found_with_a_string_detail(api):
    _, client = api
    body = assert_error_shape(client.get(f"{PREFIX}/models/no_such_model"), 404, "not_found")
    assert "no_such_model" in body["detail"]


def test_routing_errors_have_the_same_shape(api):
    _, client = api
    assert_error_shape(client.get(f"{PREFIX}/no/such/route"), 404, "not_found")
    r = client.get(f"{PREFIX}/predict")
    assert_error_shape(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


def test_auth_errors_have_codes_and_keep_their_headers(api):
    _, client = api
    r = client.post(f"{PREFIX}/train", json={})
    assert_error_shape(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "exc,status,code",
    [
        (NotFoundError("no job 'x'"), 404, "not_found"),
        (InvalidRequestError("bad page token"), 400, "invalid_request"),
        (InvalidDataError("too_few_rows: 3 candles, the model needs 60"), 422, "invalid_data"),
        (ConflictError("job already ended"), 409, "conflict"),
        (UnavailableError("job queue unavailable"), 503, "unavailable"),
        (ServiceError("a fault"), 500, "internal_error"),
        (InvalidTokenError("missing or invalid API token"), 401, "unauthorized"),
        (ReadOnlyError("read-only"), 403, "forbidden"),
        (RuntimeError("boom"), 500, "internal_error"),
    ],
)
def test_each_error_maps_to_its_status_and_code(exc, status, code):
    app = FastAPI()
    install_error_handlers(app, secrets=[])

    @app.get("/fail")
    def fail() -> None:
        raise exc

    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_error_shape(client.get("/fail"), status, code)
    if isinstance(exc, ServiceError):
        assert body["detail"] == str(exc) and exc.code == code
    else:  # a bug's message may hold anything: only its class is shown
        assert body["detail"] == "internal error (RuntimeError); see the server log"


def test_a_long_service_message_is_clipped():
    app = FastAPI()
    install_error_handlers(app, secrets=[])

    @app.get("/fail")
    def fail() -> None:
        raise InvalidRequestError("bad filter: " + "q" * 100_000)

    with TestClient(app) as client:
        body = assert_error_shape(client.get("/fail"), 400, "invalid_request")
    assert body["detail"].startswith("bad filter: qqq") and len(body["detail"]) == 2000


def test_openapi_documents_every_error_as_error_response(api):
    _, client = api
    schema = client.get("/openapi.json").json()
    ref = "#/components/schemas/ErrorResponse"
    predict_422 = schema["paths"][f"{PREFIX}/predict"]["post"]["responses"]["422"]
    assert predict_422["content"]["application/json"]["schema"]["$ref"] == ref
    drift_422 = schema["paths"][f"{PREFIX}/drift"]["get"]["responses"]["422"]
    assert drift_422["content"]["application/json"]["schema"]["$ref"] == ref
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, methods in schema["paths"].items():
        if not path.startswith(PREFIX):
            continue
        for method, op in methods.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and path != f"{PREFIX}/health":
                    assert response["content"]["application/json"]["schema"]["$ref"] == ref, (path, method, status)
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in op["responses"], (path, method)
    errors = schema["components"]["schemas"]["ErrorResponse"]
    assert errors["required"] == ["detail", "code"] and errors["properties"]["errors"]["maxItems"] == MAX_LISTED_ERRORS
    item = schema["components"]["schemas"]["ErrorItem"]
    assert set(item["properties"]) == {"loc", "msg", "type"}


def test_write_routes_document_their_auth_errors(api):
    _, client = api
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/train", "/retrain", "/models/{name}/promote", "/jobs/{job_id}/cancel"):
        responses = paths[PREFIX + path]["post"]["responses"]
        assert {"401", "403", "413", "422"} <= set(responses), path


def test_a_long_value_in_a_write_body_is_not_echoed(api):
    _, client = api
    r = client.post(f"{PREFIX}/train", json={"epochs": "x" * 5000}, headers=AUTH)
    assert_error_shape(r, 422, "validation_error")
    assert AUTH["Authorization"].split()[1] not in r.text and "x" * 100 not in r.text
