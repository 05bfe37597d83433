"""Every registered loss config validates with its defaults; wrong kinds and extra fields fail."""

import typing

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from edgekd.distill.losses import LOSSES
from edgekd.errors import UnknownNameError

# required fields of the configs that need module paths
_REQUIRED = {"student": "a", "teacher": "b"}

EXPECTED = {
    "regression", "hinton_kd", "mae_feature", "cwd", "fitnet", "token_kd", "ppl_ce", "bild", "dbild",
    "attention_transfer", "mgd", "dkd", "dist", "reverse_kl", "jsd", "topk_kld", "dho", "trg", "rkd_distance",
    "visual_switch", "cosine_embed", "acam", "lad",
}


def _minimal(cls) -> dict:
    return {k: v for k, v in _REQUIRED.items() if k in cls.model_fields and cls.model_fields[k].is_required()}


def test_every_kind_is_registered() -> None:
    assert set(LOSSES.kinds()) == EXPECTED


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_defaults_validate_and_extra_fails(kind: str) -> None:
    cls = LOSSES.config_class(kind)
    cfg = cls(**_minimal(cls))
    # LAD's weight defaults to the official code's 3 (its CWD term); every other term to 1
    assert cfg.kind == kind and cfg.weight == (3.0 if kind == "lad" else 1.0)
    assert callable(LOSSES.get(cfg))
    with pytest.raises(ValidationError, match="extra"):
        cls(**_minimal(cls), temprature=2.0)
    with pytest.raises(ValidationError):
        cls(**_minimal(cls), kind="not_" + kind)


def test_tagged_union_selects_by_kind() -> None:
    union = typing.Annotated[typing.Union[tuple(LOSSES.config_classes())], Field(discriminator="kind")]  # noqa: UP007
    ta = TypeAdapter(union)
    assert type(ta.validate_python({"kind": "cwd", "student": "a", "teacher": "b"})).__name__ == "CWDConfig"
    with pytest.raises(ValidationError):
        ta.validate_python({"kind": "hinton", "temperature": 2})
    with pytest.raises(UnknownNameError, match="hinton_kd"):
        LOSSES.config_class("hinton")
