"""Building a network from a registry by name: one place for the config errors every registry reports.

The SELD zoo (``train.model``), the S5 taggers (``s5.tagger.model``) and separators (``s5.separator.model``) all
turn an unknown name or arguments the constructor rejects into a :class:`ConfigError` naming the config key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from seldflow.errors import ConfigError


def build_registered(
    registry: Mapping[str, Callable[..., Any]],
    name: str,
    *args: Any,
    source: str,
    section: str,
    what: str = "model",
    **kwargs: Any,
) -> Any:
    """``registry[name](*args, **kwargs)``; errors name ``<section>model`` or ``<section>model_args`` of ``source``."""
    try:
        factory = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ConfigError(source, f"{section}model", f"unknown {what} {name!r} (known: {known})") from None
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, f"{section}model_args", f"invalid arguments for {name!r}: {exc}") from None
