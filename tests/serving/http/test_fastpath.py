"""The infer fast path matches exactly the paths Starlette's infer routes match, and the
requests it takes behave as the route's (auth, errors, metrics come from the same endpoint)."""

from __future__ import annotations

import json

import pytest
from starlette.routing import Match, Route

from serving.http.fastpath import INFER_ROUTE, infer_path_params
from tests.helpers.http import http

VERSIONED = INFER_ROUTE.replace("{model}", "{model}/versions/{version}", 1)
PATHS = [
    "/v2/models/cnn/infer",
    "/v2/models/cnn/versions/2/infer",
    "/v2/models/a.b-c_d/infer",
    "/v2/models//infer",
    "/v2/models/cnn/versions//infer",
    "/v2/models/cnn/infer/",
    "/v2/models/cnn/ready",
    "/v2/models/cnn/versions/2/ready",
    "/v2/models/cnn/x/infer",
    "/v2/model/cnn/infer",
    "/v2/models/cnn/versions/2/3/infer",
    "/v2/models/infer",
    "/x/v2/models/cnn/infer",
]


def starlette_params(path: str) -> dict[str, str] | None:
    for template in (INFER_ROUTE, VERSIONED):
        scope = {"type": "http", "method": "POST", "path": path, "root_path": ""}
        match, child = Route(template, lambda r: None, methods=["POST"]).matches(scope)
        if match is Match.FULL:
            return child["path_params"]
    return None


@pytest.mark.parametrize("path", PATHS)
def test_matches_what_the_routes_match(path):
    assert infer_path_params(path) == starlette_params(path)


def test_fast_path_requests_behave_as_the_route(server):
    body = json.dumps(
        {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 784], "data": [0.0] * 784}]}
    ).encode()
    base = f"{server.http_url}/v2/models"
    status, headers, answer = http("POST", f"{base}/cnn/infer", body)
    assert status == 200 and headers["x-request-id"]
    assert json.loads(answer)["outputs"][0]["shape"] == [1, 10]
    status, _, answer = http("POST", f"{base}/cnn/versions/1/infer", body)
    assert status == 200 and json.loads(answer)["model_version"] == "1"
    # Errors come from the same table as every route's: JSON with the request id.
    status, _, answer = http("POST", f"{base}/nope/infer", body)
    assert status == 404 and "nope" in json.loads(answer)["error"]
    status, _, answer = http("POST", f"{base}/cnn/infer", b"{not json")
    assert status == 400 and json.loads(answer)["error"]
    # Not the fast path's: a GET of the infer path is Starlette's 405, in the API's shape.
    status, _, answer = http("GET", f"{base}/cnn/infer")
    assert status == 405 and json.loads(answer)["error"]
    registry = server.app.metrics.registry
    labels = {"model": "cnn", "version": "1", "api": "rest", "method": "ModelInfer", "code": "200"}
    assert registry.get_sample_value("digits_requests_total", labels) == 2
