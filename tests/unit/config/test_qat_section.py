"""distill.qat: true/false keep working, the section's fields are validated and named in errors."""

from __future__ import annotations

import pytest

from edgekd.errors import ConfigError
from edgekd.tasks.recipe import load_recipe


@pytest.mark.parametrize(("sets", "expect"), [
    ([], None),
    (["distill.qat=false"], None),
    (["distill.qat=true"], ("scratch", 8, True)),
    (["distill.qat.enabled=false", "distill.qat.weight_bits=4"], None),
    (["distill.qat.mode=finetune", "distill.qat.weight_bits=4", "distill.qat.per_channel=false"],
     ("finetune", 4, False)),
])
def test_qat_section_spellings(sets: list[str], expect: tuple[str, int, bool] | None) -> None:
    qat = load_recipe("segmentation", sets).distill.qat
    if expect is None:
        assert qat is None
    else:
        assert qat is not None and (qat.mode, qat.weight_bits, qat.per_channel) == expect


def test_bad_qat_fields_are_all_reported() -> None:
    with pytest.raises(ConfigError) as exc:
        load_recipe("segmentation", ["distill.qat.weight_bits=9", "distill.qat.mode=later",
                                     "distill.qat.finetune_lr_scale=0"])
    text = str(exc.value)
    for field in ("distill.qat.weight_bits", "distill.qat.mode", "distill.qat.finetune_lr_scale"):
        assert field in text, text


def test_requantize_needs_uint8_activations() -> None:
    with pytest.raises(ConfigError, match="export='requantize'.*activation='int8'"):
        load_recipe("segmentation", ["distill.qat.export=requantize", "distill.qat.activation=int8"])
    assert load_recipe("segmentation", ["distill.qat.export=requantize"]).distill.qat.export == "requantize"  # type: ignore[union-attr]


@pytest.mark.parametrize(("sets", "kind"), [
    ([], "requantize"), (["distill.qat.activation=int8"], "qdq"), (["distill.qat.export=qdq"], "qdq")])
def test_export_auto_follows_the_activation_type(sets: list[str], kind: str) -> None:
    qat = load_recipe("segmentation", ["distill.qat=true", *sets]).distill.qat
    assert qat is not None and qat.export_kind == kind
