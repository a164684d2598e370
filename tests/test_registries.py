"""Each registry is the one owner of its names: the configuration schema's enums must list exactly its entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seldflow.feature_kinds import FEATURE_KINDS
from seldflow.formats import LABEL_FORMATS
from seldflow.metrics import METRICS
from seldflow.models import MODELS
from seldflow.models.sed import SEDS
from seldflow.models.separators import SEPARATORS
from seldflow.models.taggers import TAGGERS
from seldflow.tasks import TASKS
from seldflow.tasks.seld_methods import METHODS

SCHEMA = yaml.safe_load((Path(__file__).parent.parent / "config" / "schema.yaml").read_text())


def schema_enum(*path: str) -> set[str]:
    node = SCHEMA
    for key in path:
        # A section composed with allOf (a shared definition plus its own keys) holds its own keys in a branch.
        branches = [node, *node.get("allOf", [])]
        node = next(branch["properties"][key] for branch in branches if key in branch.get("properties", {}))
    return {value for value in node["enum"] if value is not None}


@pytest.mark.parametrize(
    ("path", "registry"),
    [
        (("features", "kind"), FEATURE_KINDS),
        (("train", "model"), MODELS),
        (("train", "method"), METHODS),
        (("dataset", "label_format"), LABEL_FORMATS),
        (("score", "metric"), METRICS),
        (("s5", "tagger", "model"), TAGGERS),
        (("s5", "separator", "model"), SEPARATORS),
        (("s5", "sed", "model"), SEDS),
    ],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else "",
)
def test_schema_enum_equals_the_registry(path: tuple[str, ...], registry: object) -> None:
    assert schema_enum(*path) == set(registry)


def test_every_label_format_defaults_to_a_registered_method_and_metric() -> None:
    for label_format in LABEL_FORMATS.values():
        assert label_format.method in METHODS and label_format.metric in METRICS


def test_the_seld_task_is_registered() -> None:
    assert "seld" in TASKS
