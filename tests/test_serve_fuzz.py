"""`fastface serve` fuzzed from its own OpenAPI schema with schemathesis: valid and
invalid requests of every operation against the real server on 127.0.0.1,
bounded in count. No answer is a 5xx, every error is the service's JSON error,
and every answer is one the schema documents (status, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from test_serve import Server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Requests in all, over every operation and both modes; each is answered in
# milliseconds (generated images are refused from their header).
EXAMPLES = 400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("fuzzed")
    running = Server("--data", folder / "data", "--timeout", 300)
    yield running
    running.stop()
    log = "".join(running.log)
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_to_its_schema_under_fuzzing(server: Server, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(server.url + "/openapi.json").json())
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES // 2,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(mode))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.method, case.path, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"][0].startswith("application/json")
            error = response.json()["error"]
            assert error["status"] == response.status_code and error["message"]
        case.validate_response(response, checks=CHECKS)

    fuzz()
    # both answers and refusals were reached
    assert sum(seen.values()) >= EXAMPLES // 4, seen
    assert any(s < 300 for s in seen) and any(400 <= s < 500 for s in seen), seen
