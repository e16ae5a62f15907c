"""The REST contract: ``rest-api.yml``, the payload TypedDicts, the live answers of a real
server and the labextension's ``payloads.ts`` (re-exported by its ``api.ts``) all say the
same thing."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
import yaml
from tornado.httpclient import HTTPClientError

import jupyter_widget_relay
from jupyter_widget_relay.core import close_codes, payloads
from jupyter_widget_relay.handlers import handlers

from .helpers import AllowByHeader

PACKAGE = Path(jupyter_widget_relay.__file__).parent
SPEC = yaml.safe_load((PACKAGE / "rest-api.yml").read_text(encoding="utf-8"))
PAYLOADS_TS = PACKAGE.parent / "labextension" / "src" / "payloads.ts"
TS = PAYLOADS_TS.read_text(encoding="utf-8")
SCHEMAS = SPEC["components"]["schemas"]
BASE = "/api/widget-relay"

# payload TypedDict -> schema; the TypedDicts of REST answers and frames all have one
TYPED = {
    payloads.Status: "Status",
    payloads.GatewayInfo: "GatewayInfo",
    payloads.KernelList: "KernelList",
    payloads.ClientInfo: "ClientInfo",
    payloads.Unsettled: "Unsettled",
    payloads.KernelSummary: "KernelSummary",
    payloads.ModelSummary: "ModelSummary",
    payloads.ModelDetail: "ModelDetail",
    payloads.ModelList: "ModelList",
    payloads.BufferRef: "BufferRef",
    payloads.SummaryEvent: "SummaryEvent",
}
# payloads.ts interface -> schema
INTERFACES = {
    "IClientInfo": "ClientInfo",
    "IUnsettled": "Unsettled",
    "IKernelSummary": "KernelSummary",
    "IModelSummary": "ModelSummary",
    "IModelDetail": "ModelDetail",
    "ISummaryEvent": "SummaryEvent",
    "IBufferRef": "BufferRef",
}
IMAGE = 'import ipywidgets as W\ns = W.IntSlider(value=7)\nimg = W.Image(value=b"\\x89PNG fake")'


def check(schema_name: str, value: Any) -> None:
    """Validate ``value`` against a schema of the contract (its ``$ref``s resolved)."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(value)


def response_schema(path: str, status: str) -> str:
    """The schema name the contract gives for ``path``'s answer with ``status``."""
    answer = SPEC["paths"][path]["get"]["responses"][status]
    if "$ref" in answer:
        answer = SPEC["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    ref: str = answer["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def ts_interfaces() -> dict[str, set[str]]:
    """Field names of each ``export interface`` in payloads.ts, inherited ones included."""
    found: dict[str, set[str]] = {}
    pattern = r"export interface (\w+)(?: extends (\w+))? \{(.*?)\n\}"
    for name, parent, body in re.findall(pattern, TS, re.S):
        fields = set(re.findall(r"^\s*readonly (\w+)\??:", body, re.M))
        found[name] = fields | found.get(parent, set())
    return found


def test_spec_is_valid_openapi() -> None:
    openapi_spec_validator.validate(SPEC)


def test_spec_has_every_route() -> None:
    routes = {re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern) for pattern, _ in handlers()}
    assert routes == {path for path in SPEC["paths"] if path.startswith(BASE)}
    assert "/metrics" in SPEC["paths"]


def test_typed_dicts_match_schemas() -> None:
    for typed, name in TYPED.items():
        schema = SCHEMAS[name]
        keys = set(typing.get_type_hints(typed))
        assert keys == set(schema["properties"]), name
        assert set(typed.__required_keys__) == set(schema["required"]), name
    assert {name for name in payloads.__all__ if name != "RelayCounts"} == {
        typed.__name__ for typed in TYPED
    }


def test_ts_interfaces_match_schemas() -> None:
    interfaces = ts_interfaces()
    for interface, name in INTERFACES.items():
        assert interfaces.get(interface) == set(SCHEMAS[name]["properties"]), interface


def test_close_codes_are_one_set() -> None:
    in_spec = {
        key: entry["code"]
        for path in SPEC["paths"].values()
        for key, entry in path["get"].get("x-close-codes", {}).items()
    }
    assert in_spec == close_codes.ALL
    in_ts = {name: int(code) for name, code in re.findall(r"export const CLOSE_(\w+) = (\d+);", TS)}
    assert in_ts == close_codes.ALL


@pytest.fixture
def server_app_config() -> dict[str, Any]:
    return {"authorizer_class": AllowByHeader}


async def test_live_answers_follow_the_contract(
    start_kernel: Any, connect: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a, _ = await connect(kernel_id), await connect(kernel_id, "json")
    events = await jp_ws_fetch("api", "widget-relay", "kernels", kernel_id, "events")
    await a.execute(IMAGE)
    image_id = await a.evaluate("img.model_id")
    paths = {
        f"{BASE}/status": ("status",),
        f"{BASE}/kernels": ("kernels",),
        f"{BASE}/kernels/{{kernel_id}}": ("kernels", kernel_id),
        f"{BASE}/kernels/{{kernel_id}}/models": ("kernels", kernel_id, "models"),
        f"{BASE}/kernels/{{kernel_id}}/models/{{model_id}}": (
            "kernels",
            kernel_id,
            "models",
            image_id,
        ),
        f"{BASE}/kernels/{{kernel_id}}/state": ("kernels", kernel_id, "state"),
    }
    for path, parts in paths.items():
        body = json.loads((await jp_fetch("api", "widget-relay", *parts)).body)
        check(response_schema(path, "200"), body)
        permission = SPEC["paths"][path]["get"]["x-permission"]
        headers = {"X-Allow": "read"}
        if permission == "execute":
            with pytest.raises(HTTPClientError) as refused:
                await jp_fetch("api", "widget-relay", *parts, headers=headers)
            assert refused.value.code == 403, path
            assert refused.value.response is not None
            check(response_schema(path, "403"), json.loads(refused.value.response.body))
        else:
            assert permission == "read", path
            body = json.loads((await jp_fetch("api", "widget-relay", *parts, headers=headers)).body)
            check(response_schema(path, "200"), body)

    image_parts = paths[f"{BASE}/kernels/{{kernel_id}}/models/{{model_id}}"]
    image = json.loads((await jp_fetch("api", "widget-relay", *image_parts)).body)
    check("BufferRef", image["state"]["value"]["$buffer"])
    for path, parts in paths.items():
        if "{kernel_id}" in path:
            missing = [part.replace(kernel_id, "no-such-kernel") for part in parts]
            with pytest.raises(HTTPClientError) as unknown:
                await jp_fetch("api", "widget-relay", *missing)
            assert unknown.value.code == 404, path
            assert unknown.value.response is not None
            check(response_schema(path, "404"), json.loads(unknown.value.response.body))
    with pytest.raises(HTTPClientError) as no_model:
        await jp_fetch("api", "widget-relay", "kernels", kernel_id, "models", "no-such-model")
    assert no_model.value.code == 404 and no_model.value.response is not None
    check("Error", json.loads(no_model.value.response.body))

    metrics = (await jp_fetch("metrics")).body.decode()
    for family in SPEC["paths"]["/metrics"]["get"]["x-metric-families"]:
        assert f"# TYPE {family} " in metrics, family

    frames = [json.loads(await events.read_message())]
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    while (message := await events.read_message()) is not None:
        frames.append(json.loads(message))
    for frame in frames:
        check("SummaryEvent", frame)
    assert frames[-1]["kernel"] is None
    assert events.close_code == close_codes.UNKNOWN_KERNEL

    unknown_events = await jp_ws_fetch("api", "widget-relay", "kernels", "no-such-kernel", "events")
    assert await unknown_events.read_message() is None
    assert unknown_events.close_code == close_codes.UNKNOWN_KERNEL
