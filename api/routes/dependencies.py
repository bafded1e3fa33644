"""What a route depends on: the service, the token check, the model (with model-side failures translated
into API errors), and the error bodies the upload endpoints document."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import torch
from fastapi import Depends, Request

from lewel.inference import MapsUnavailableError

from ..errors import ApiError, echo_prefix
from ..middleware import token_matches, unauthorized
from ..registry import LoadedModel, ModelFile, ModelLoadFailed, ModelNotFound, ModelRefused
from ..schemas import ErrorBody
from ..service import Service

#: the JSON error bodies the upload endpoints document in OpenAPI (401 only with a token: ``api.openapi``)
ERROR_RESPONSES = {status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 415, 422, 500, 503)}


def get_service(request: Request) -> Service:
    """The application's ``Service`` (``request.app.state.service``)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def require_token(service: ServiceDep, request: Request) -> None:
    """With ``LEWEL_API_TOKEN`` set, the request must carry ``Authorization: Bearer <token>``
    (``TokenMiddleware`` already refuses others before their body is read; ``api.openapi`` documents it
    only when a token is set)."""
    token = service.settings.api_token
    if token is None:
        return
    if not token_matches(request.headers.get("authorization"), token.get_secret_value()):
        raise unauthorized(request.url.path)


@contextmanager
def model_errors(service: Service) -> Iterator[None]:
    """Translate model-side failures: unknown model 404, unloadable file 500, no maps 422, out of GPU
    memory 503 with Retry-After."""
    try:
        yield
    except ModelNotFound as error:
        raise ApiError(404, "model_not_found", str(error), model=echo_prefix(error.model_id)) from None
    except ModelRefused as error:
        raise ApiError(403, "model_refused", str(error), model=error.model_id, file=error.file) from None
    except ModelLoadFailed as error:
        raise ApiError(500, "model_load_failed", str(error), model=error.model_id, file=error.file) from None
    except MapsUnavailableError as error:
        raise ApiError(422, "model_without_maps", f"this model has no alignment maps: {error}") from None
    except torch.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise ApiError(
            503,
            "out_of_memory",
            "the GPU ran out of memory; retry later, or ask for fewer views or a smaller size",
            headers={"Retry-After": str(service.settings.retry_after_s)},
        ) from None


def get_model(service: Service, model_id: str | None) -> LoadedModel:
    """The loaded model ``model_id`` (``None``: the default), model failures translated."""
    with model_errors(service):
        return service.registry.get(model_id)


def get_maps_model(service: Service, model_id: str | None) -> LoadedModel:
    """``get_model``, and 422 ``model_without_maps`` for a model without LEWEL's coupled head (the map routes)."""
    loaded = get_model(service, model_id)
    if not loaded.model.has_maps:
        raise ApiError(
            422,
            "model_without_maps",
            f"model {loaded.id!r} ({loaded.model.method}) has no alignment maps: choose a LEWEL model from /v1/models",
        )
    return loaded


def maps_file(service: Service, model: str) -> ModelFile:
    """The file of ``model`` if a build (an atlas, a profile) can read maps from it, without loading it onto the
    device: 404 unknown, 403 refused, 500 unloadable, 422 without maps."""
    with model_errors(service):
        file = service.registry.resolve(model)
    if file.refused:
        raise ApiError(403, "model_refused", f"model {model!r} is refused: {file.refused}", model=model)
    entry = service.registry.describe(file)
    if entry["status"] == "error":
        raise ApiError(500, "model_load_failed", f"model {model!r} (file {file.name}) cannot be loaded: {entry['error']}")
    if entry.get("has_maps") is False:
        raise ApiError(422, "model_without_maps", f"model {model!r} is a {entry.get('method')} model: it has no maps")
    return file
