"""What clients may see of the server's file system: nothing, unless ``LEWEL_EXPOSE_PATHS=1``.

Messages made by the library name files by their paths (right for the command line, where the user gave
them). Before a message leaves the service, every known folder of the server in it (the models folders,
the atlas folders, the temporary folder, the installation, the working directory, the home folder; as
given and with links resolved) is cut away: a file under one is named by its path below it (``r50.pt``,
``tiny/atlas.json``) and the folder itself by its label (``<models_dir>``). Full paths stay in the log.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: what separates a path from the text around it on the left
_BEFORE = r"(?<![\w./~-])"


class PathRedactor:
    """Cuts the folders ``roots`` (``(label, path)`` pairs) out of texts and JSON values; a no-op when
    ``expose`` is true."""

    def __init__(self, roots: Sequence[tuple[str, Path | str | None]], *, expose: bool = False) -> None:
        self.expose = expose
        spelled: dict[str, str] = {}
        for label, root in roots:
            if root is None:
                continue
            for form in {os.fspath(root), os.path.realpath(root)}:
                form = form.rstrip("/")
                if len(form) > 1 and form not in spelled:
                    spelled[form] = label
        #: longest first, so that a folder inside another one is cut with its own label
        self._roots = sorted(spelled.items(), key=lambda item: -len(item[0]))
        self._pattern = (
            re.compile(_BEFORE + "(" + "|".join(re.escape(form) for form, _ in self._roots) + r")(/+|(?![\w.-]))")
            if self._roots
            else None
        )
        self._labels = dict(self._roots)

    @classmethod
    def for_service(cls, folders: Sequence[tuple[str, Path | None]], *, expose: bool) -> PathRedactor:
        """The service's ``folders`` and the places any server's paths come from."""
        package = Path(__file__).resolve().parent.parent
        common = [
            ("tmp", Path(tempfile.gettempdir())), ("install", package), ("cwd", Path.cwd()),
            ("python", Path(sys.prefix)), ("python", Path(sys.base_prefix)), ("home", Path.home()),
        ]
        return cls([*folders, *common], expose=expose)

    def text(self, text: str) -> str:
        """``text`` with the known folders cut out (``ROOT/a/b`` -> ``a/b``, ``ROOT`` -> ``<label>``)."""
        if self.expose or self._pattern is None or not text:
            return text

        def cut(match: re.Match[str]) -> str:
            return "" if match.group(2) else f"<{self._labels[match.group(1)]}>"

        return self._pattern.sub(cut, text)

    def value(self, value: Any) -> Any:
        """``value`` (a JSON-like tree of dicts, lists and strings) with ``text`` applied to every string."""
        if self.expose:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value
