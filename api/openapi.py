"""The OpenAPI document, made to say what the service does with its settings.

FastAPI's generated document is adjusted once, when first asked for:

- security (a bearer scheme, and 401 answers) on ``/v1/*`` and ``/metrics`` only when ``LEWEL_API_TOKEN`` is
  set, because that is when ``TokenMiddleware`` asks for it; none otherwise;
- the multipart bodies are flattened into one object with ``additionalProperties: false`` (unknown fields
  are refused with 422), the file fields are binary strings with the image media types they may be in
  (multipart ``encoding``), no field is nullable (a form field is a value or absent: "null" is refused like
  any other wrong value), ``/v1/maps``'s rules between fields are stated as if/then (``indices=`` alone,
  ``pattern=``/``category=`` with ``order=index`` or ``measured``), ``views`` and ``size`` carry the service's limits as maxima
  (and ``scenes`` and ``size`` of an atlas build theirs), and integer bounds are integers (the seed's
  ``2**63 - 1`` was written as a float);
- every upload endpoint lists 400 (malformed body or Content-Length), 413, 415, 422 and 503 (busy, out of
  GPU memory) answers; ``/metrics`` answers Prometheus text.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from .settings import Settings

PROTECTED = ("/v1/", "/metrics")
SEED_MAXIMUM = 2**63 - 1
SCHEME = "bearer"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
UPLOAD_ERRORS = {
    "400": "malformed request: invalid Content-Length or multipart body",
    "413": "the upload, or the image it declares, is over a limit (LEWEL_MAX_UPLOAD_MB, LEWEL_MAX_PIXELS)",
    "415": "the upload is not a usable image",
    "422": "invalid, unknown or too costly parameters (the message names them and the limit)",
    "503": "busy (the memory budget's queue is full) or out of GPU memory; see Retry-After",
}
BINARY = {"type": "string", "format": "binary"}
#: the media types of the image formats an upload may be in (``lewel.files.images.ALLOWED_FORMATS``, sniffed from
#: the bytes, whatever the part's Content-Type says), and of a mask (a PNG, as documented)
IMAGE_TYPES = (
    "image/png, image/jpeg, image/webp, image/gif, image/bmp, image/tiff, image/x-portable-pixmap, image/x-tga"
)
FILE_TYPES = {"image": IMAGE_TYPES, "mask": "image/png"}
#: what /v1/maps refuses whatever the model (``api.routes.maps``): ``indices=`` chooses and orders the maps itself,
#: ``pattern=`` and ``category=`` choose from the profile in its order (any ``maps=`` narrows them); JSON Schema's
#: if/then, so that a generator (Schemathesis) and a reader see the rule, not only the 422
MAPS_RULES = [
    {
        "if": {"required": ["indices"]},
        "then": {
            "properties": {"maps": {"const": "all"}, "order": {"const": "index"}},
            "not": {"anyOf": [{"required": ["pattern"]}, {"required": ["category"]}]},
        },
    },
    {
        "if": {"anyOf": [{"required": ["pattern"]}, {"required": ["category"]}]},
        "then": {"properties": {"order": {"enum": ["index", "measured"]}}},
    },
]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(ERROR_REF)}}}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return components.get(ref.rsplit("/", 1)[-1], {}) if ref else schema


def _not_null(field: dict[str, Any]) -> dict[str, Any]:
    """A form field's schema without pydantic's ``null`` alternative (``X | None = None``): a form field is a
    string or absent, never null, and the literal "null" is a value the service reads, and refuses, like any
    other (``pattern=null`` is not a pattern). Absent is what ``None`` means."""
    alternatives = [a for a in field.get("anyOf", []) if a.get("type") != "null"]
    if "anyOf" not in field or len(alternatives) != 1:
        return field
    kept = {k: v for k, v in field.items() if k not in ("anyOf", "default")}
    return {**alternatives[0], **kept}


def _flatten_body(body: dict[str, Any], components: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """One object schema for a multipart body: the parameters' properties inlined next to the files."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in body.get("allOf", []):
        resolved = _resolve(part, components)
        properties.update(copy.deepcopy(resolved.get("properties", {})))
        required += resolved.get("required", [])
    for name, field in body.get("properties", {}).items():
        described = {k: v for k, v in field.items() if k in ("title", "description")}
        properties[name] = {**BINARY, **described}
    required += body.get("required", [])
    for name, field in properties.items():
        properties[name] = _not_null(field)
    if "views" in properties:
        properties["views"]["maximum"] = settings.max_views
    if "size" in properties:
        properties["size"]["maximum"] = settings.max_input_size
    if "seed" in properties:
        properties["seed"]["maximum"] = SEED_MAXIMUM
    flattened = {"type": "object", "properties": properties, "additionalProperties": False, "title": body.get("title")}
    if required:
        flattened["required"] = sorted(set(required))
    if "indices" in properties and "pattern" in properties:
        flattened["allOf"] = copy.deepcopy(MAPS_RULES)
    return flattened


def _atlas_build_bounds(schema: dict[str, Any], settings: Settings) -> None:
    """The build's form fields with the service's limits as maxima; ``scenes`` is an integer or absent (a form
    field is never null)."""
    properties = schema["properties"]
    properties["scenes"] = {**_not_null(properties["scenes"]), "maximum": settings.atlas_max_scenes}
    properties["size"]["maximum"] = settings.max_input_size


def _integer_bounds(node: Any) -> None:
    """Bounds of integer fields written as integers (pydantic writes ``ge=0`` as ``minimum: 0.0``)."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(node.get(key), float) and node[key].is_integer():
                    node[key] = int(node[key])
        for value in node.values():
            _integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _integer_bounds(value)


def adjust(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``schema`` (FastAPI's document) made to match the service's behaviour under ``settings``."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in list(schemas):
        if name.startswith("Body_"):
            schemas[name] = _flatten_body(schemas[name], schemas, settings)
        elif name == "AtlasBuildParams":
            _atlas_build_bounds(schemas[name], settings)
        elif "seed" in schemas[name].get("properties", {}):
            schemas[name]["properties"]["seed"]["maximum"] = SEED_MAXIMUM
            schemas[name]["additionalProperties"] = False
    token = settings.api_token is not None
    components.pop("securitySchemes", None)
    if token:
        components["securitySchemes"] = {
            SCHEME: {"type": "http", "scheme": "bearer", "description": "the service's token (LEWEL_API_TOKEN)"}
        }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            operation.pop("security", None)
            if token and path.startswith(PROTECTED):
                operation["security"] = [{SCHEME: []}]
                responses["401"] = _error("missing or wrong 'Authorization: Bearer <token>'")
            else:
                responses.pop("401", None)
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if method == "post" and form is not None:
                body = _resolve(form.get("schema", {}), schemas).get("properties", {})
                form["encoding"] = {name: {"contentType": types} for name, types in FILE_TYPES.items() if name in body}
                for status, description in UPLOAD_ERRORS.items():
                    responses[status] = _error(description)
                retry = {"schema": {"type": "integer"}, "description": "seconds to wait before retrying"}
                responses["503"]["headers"] = {"Retry-After": retry}
    _integer_bounds(schemas)
    metrics = schema.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}
        }
    return schema


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve ``adjust``ed OpenAPI at ``/openapi.json`` (and so in ``/docs``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_adjusted", False):
            return app.openapi_schema
        app.openapi_schema = adjust(generate(), settings)
        app.state.openapi_adjusted = True
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
