from typing import Literal

import pytest

from edgekd.config.recipe import Strict
from edgekd.errors import UnknownNameError
from edgekd.registry import Registry, kind_of


class AConfig(Strict):
    kind: Literal["alpha"] = "alpha"


class BConfig(Strict):
    kind: Literal["beta"] = "beta"


def test_register_get_and_miss_suggests() -> None:
    reg: Registry[str] = Registry("widget")
    reg.register(AConfig)("impl-a")
    assert reg.get(AConfig()) == "impl-a"
    assert reg.config_class("alpha") is AConfig
    with pytest.raises(UnknownNameError) as info:
        reg.config_class("alpah")
    assert info.value.suggestion == "alpha"
    assert "Did you mean 'alpha'" in str(info.value)
    with pytest.raises(UnknownNameError):
        reg.get(BConfig())


def test_duplicate_registration_raises() -> None:
    reg: Registry[str] = Registry("widget")
    reg.register(AConfig)("x")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(AConfig)("y")


def test_kind_of_requires_literal() -> None:
    class NoKind(Strict):
        x: int = 1

    with pytest.raises(TypeError):
        kind_of(NoKind)
    assert kind_of(BConfig) == "beta"
