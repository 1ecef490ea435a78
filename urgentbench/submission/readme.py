"""README.yaml: the team name and what a submission used, read as plain, length-capped text."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from urgentbench.audio import AudioError, read_file_bytes
from urgentbench.errors import squash

README_NAMES = ("README.yaml", "README.yml")
README_MAX_BYTES = 64 * 1024
METADATA_MAX_FIELDS = 32
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 500
_TEAM_KEYS = {"team", "team_name", "teamname", "team_id"}


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value: Any, budget: int, depth: int = 0) -> str:
    """One-line text of a YAML value, about ``budget`` characters at most.

    Containers are rendered item by item, each child getting only the budget left, so
    the work stays proportional to the budget even for huge or self-referencing values
    (YAML aliases).
    """
    if value is None or budget <= 0:
        return ""
    if isinstance(value, bytes):
        value = value[: budget * 4].decode("utf-8", "replace")
    if isinstance(value, str) or not isinstance(value, (list, tuple, dict)):
        return squash(str(value)[: budget * 4])
    if depth >= 3:
        return "…"
    pieces: list[str] = []
    used = 0
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        if used >= budget:
            pieces.append("…")
            break
        piece = _render(item, budget - used, depth + 1)
        if key is not None:
            piece = f"{_render(key, METADATA_KEY_MAX, depth + 1)}: {piece}"
        pieces.append(piece)
        used += len(piece) + 2
    if depth == 0:
        return "; ".join(pieces)
    text = ", ".join(pieces)
    return f"{{{text}}}" if isinstance(value, dict) else f"[{text}]"


def readme_metadata(data: dict) -> dict[str, str]:
    """Leaderboard metadata from a parsed README.yaml: strings only, length-capped.

    The team name (key ``team``, ``team name``, ``team_name``...) is stored as ``team``;
    other top-level fields keep their key. Empty values are dropped.
    """
    out: dict[str, str] = {}
    for key, value in data.items():
        if len(out) >= METADATA_MAX_FIELDS:
            break
        name = cap(_render(key, METADATA_KEY_MAX), METADATA_KEY_MAX)
        text = cap(_render(value, METADATA_VALUE_MAX), METADATA_VALUE_MAX)
        if not name or not text:
            continue
        if re.sub(r"[\s\-]+", "_", name.lower()) in _TEAM_KEYS:
            name = "team"
        out.setdefault(name, text)
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line on why README.yaml could not be parsed; a YAML tag (``!!python/object``...) is named."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or ""
    tag = re.search(r"tag '([^']*)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        where = f" ({where})" if where else ""
        return f"YAML tag {cap(name, 80)!r} is not allowed{where}; README.yaml must be plain key: value text"
    detail = squash(f"{problem}, {where}" if problem and where else problem or where or str(exc))
    return f"not valid YAML ({detail[:200]})"


def read_readme(root: Path) -> tuple[Path | None, dict[str, str], str | None]:
    """Find and parse the README.yaml of a submission folder.

    Returns:
        ``(path or None, metadata, problem or None)``; the problem is a one-line reason
        without the file name.
    """
    path = next((root / n for n in README_NAMES if os.path.lexists(root / n)), None)
    if path is None:
        return None, {}, "not found (it gives the team name, data used and pre-trained models used)"
    try:  # a regular file (or a link to one inside the submission), checked before it is opened
        raw = read_file_bytes(path, inside=root, max_bytes=README_MAX_BYTES)
    except AudioError as exc:
        problem = exc.problem.replace("allowed for this file", "allowed")
        return path, {}, "empty (0 bytes)" if problem == "file is empty (0 bytes)" else problem
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return path, {}, "not UTF-8 text"
    except yaml.YAMLError as exc:
        return path, {}, _yaml_problem(exc)
    if not isinstance(data, dict):
        return path, {}, f"expected a YAML mapping (key: value lines), got {type(data).__name__}"
    metadata = readme_metadata(data)
    if not metadata:
        return path, {}, "no fields"
    return path, metadata, None

