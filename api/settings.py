"""Service settings, read from ``LEWEL_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lewel.files.images import DEFAULT_MAX_PIXELS
from lewel.maps.controls import CONTROL_SEEDS, INIT_SCHEMES

#: The demo models shipped with the repository (``models/`` next to the ``api`` package).
BUNDLED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MEBIBYTE = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of the service; the environment variable is ``LEWEL_`` + the field name in capitals
    (``LEWEL_MODELS_DIR``, ``LEWEL_API_TOKEN`` ...)."""

    model_config = SettingsConfigDict(env_prefix="LEWEL_", extra="ignore", allow_inf_nan=False)

    models_dir: Path | None = Field(None, description="folder of checkpoints to serve next to the bundled ones")
    bundled_models_dir: Path = Field(BUNDLED_MODELS_DIR, description="the demo models' folder")
    atlas_dir: Path | None = Field(
        None, description="folder of map atlases, one subfolder per model id (lewel atlas OUT --dest DIR/ID)"
    )
    atlas_build_dir: Path | None = Field(
        None,
        description="where POST /v1/atlas/{model}/build writes (and the service serves) when LEWEL_ATLAS_DIR is "
        "unset; default a temporary folder of this process, removed when it stops",
    )
    atlas_max_scenes: int = Field(1000, ge=1, description="most generated scenes one atlas build may ask for")
    profile_dir: Path | None = Field(
        None,
        description="where POST /v1/models/{model}/profile writes a profile when the checkpoint's folder is not "
        "writable (PROFILE_DIR/<source>/NAME.profile.json), and where the registry looks for one too; unset, such "
        "a build fails saying so",
    )
    profile_max_images: int = Field(512, ge=1, description="most images per split one profile build may ask for")
    profile_control_seeds: int = Field(
        CONTROL_SEEDS, ge=1, description="random controls of each scheme a profile build measures (as lewel profile)"
    )
    profile_control_schemes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(INIT_SCHEMES),
        description=f"comma-separated initialisation schemes of a profile build's controls, of {', '.join(INIT_SCHEMES)}",
    )
    default_model: str | None = Field(None, description="model id; else the model whose map profile localises best, else the first found")
    api_token: SecretStr | None = Field(
        None, description="when set, /v1/* and /metrics need 'Authorization: Bearer <token>'"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS; empty = CORS off"
    )
    max_upload_mb: float = Field(
        20.0, gt=0, description="largest uploaded file, in MiB (the request body may carry 64 KiB more)"
    )
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, gt=0, description="largest image, width × height as declared by the file"
    )
    cache_size: int = Field(2, ge=1, description="models kept loaded at once (least recently used evicted)")
    device: str | None = Field(None, description="torch device; default cuda when available, else cpu")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op CPU threads (default: torch's choice); 1 helps on cores shared with other jobs",
    )
    microbatch: bool = Field(False, description="run concurrent requests' views as one batch (for GPUs)")
    microbatch_max_size: int = Field(32, ge=1, description="most images in one micro-batch")
    microbatch_wait_ms: float = Field(5.0, ge=0, description="how long a micro-batch waits for more requests")
    max_views: int = Field(8, ge=0, description="most augmented views per request")
    max_input_size: int = Field(512, ge=32, description="largest input side a request may ask for")
    warmup_size: int = Field(224, ge=32, description="input side of the warm-up run that makes /readyz ready")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of 503 answers (busy, out of GPU memory)")
    max_request_pixels: int = Field(
        1_048_576, ge=1024, description="most model input pixels per request: (views + 1) × size² (4 views at 512 px)"
    )
    max_frame_values: int = Field(
        8_388_608, ge=1, description="most image-frame map values per /v1/maps request: (views + 1) × d × rows × cols"
    )
    max_response_mb: float = Field(32.0, gt=0, description="largest answer, in MiB, as estimated before computing")
    memory_budget_mb: float = Field(
        2048.0, gt=0, description="memory that concurrent decodes and extractions may hold together, in MiB"
    )
    expose_paths: bool = Field(
        False,
        description="show the server's folders and file paths to clients (/v1/models, build status, messages); "
        "off, answers name models and files by id and the full paths go to the server log only",
    )
    max_queued: int = Field(8, ge=0, description="requests waiting for the memory budget; beyond, 503 with Retry-After")
    malloc_arena_max: int = Field(
        2, ge=0, description="most glibc malloc arenas (mallopt M_ARENA_MAX at start-up; 0: glibc's default, "
        "MALLOC_ARENA_MAX in the environment wins): fewer arenas keep less freed memory",
    )
    malloc_trim_mb: float = Field(
        64.0, ge=0, description="give freed memory back to the system (glibc malloc_trim) after a request whose "
        "memory estimate is at least this many MiB; 0: never",
    )
    drawing_workers: int = Field(
        1, ge=1, description="figures (format=png|pdf|svg) drawn at once, in processes apart from the model passes"
    )
    drawing_max_queued: int = Field(
        4, ge=0, description="figures waiting for a drawing worker; one more is answered 503 busy with Retry-After"
    )
    drawing_nice: int = Field(
        10, ge=0, le=19, description="how much lower the drawing processes' CPU priority is (nice): model passes first"
    )
    drawing_queue_s: float = Field(
        20.0, gt=0, description="longest a figure waits for a drawing worker, in seconds; then 503 busy with Retry-After"
    )

    @field_validator("api_token")
    @classmethod
    def _token_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(
                "LEWEL_API_TOKEN is set but empty, which would accept 'Authorization: Bearer' with no token: "
                "unset it to serve without a token, or set it to a secret"
            )
        return value

    @field_validator("profile_control_schemes", mode="before")
    @classmethod
    def _split_schemes(cls, value: object) -> object:
        if isinstance(value, str):
            return [scheme.strip() for scheme in value.split(",") if scheme.strip()]
        return value

    @field_validator("profile_control_schemes")
    @classmethod
    def _known_schemes(cls, value: list[str]) -> list[str]:
        unknown = [scheme for scheme in value if scheme not in INIT_SCHEMES]
        if unknown or not value:
            raise ValueError(
                f"LEWEL_PROFILE_CONTROL_SCHEMES must name one or more of {', '.join(INIT_SCHEMES)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        return list(dict.fromkeys(value))

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MEBIBYTE)

    @property
    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * MEBIBYTE)

    @property
    def malloc_trim_bytes(self) -> int:
        return int(self.malloc_trim_mb * MEBIBYTE)

    @property
    def memory_budget_bytes(self) -> int:
        return int(self.memory_budget_mb * MEBIBYTE)

    @property
    def max_body_bytes(self) -> int:
        """The request-body cap: the file cap plus 64 KiB for the multipart framing and form fields."""
        return self.max_upload_bytes + 64 * 1024
