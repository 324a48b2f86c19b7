"""runner.types.quick_init: a frozen dataclass's __init__ that writes the instance dict must do
exactly what the dataclass's own does: the same signature, the same fields and defaults,
factories called per instance, __post_init__ called, and the instance still frozen."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import pytest

import runner
from runner.types import quick_init


def _twins() -> list[tuple[type, type]]:
    """Pairs of the same class, with and without quick_init, over every field kind."""

    def make(quick: bool) -> list[type]:
        def deco(cls: type) -> type:
            cls = dataclass(frozen=True)(cls)
            return quick_init(cls) if quick else cls

        @deco
        class Plain:
            a: int
            b: str = "b"
            c: list[int] = field(default_factory=list)

        @deco
        class Keywords:
            a: int
            b: int = field(default=2, kw_only=True)
            c: int = field(kw_only=True, default_factory=lambda: 3)
            d: str = "d"

        @deco
        class NotInInit:
            a: int
            b: int = field(default=7, init=False)
            c: dict[str, int] = field(default_factory=dict, init=False)

        @deco
        class PostInit:
            a: int
            seen: list[int] = field(default_factory=list)

            def __post_init__(self) -> None:
                self.seen.append(self.a)

        return [Plain, Keywords, NotInInit, PostInit]

    return list(zip(make(False), make(True), strict=True))


_CALLS: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "Plain": [((1,), {}), ((1, "x"), {}), ((1, "x", [5]), {}), ((), {"a": 2, "c": [1]})],
    "Keywords": [((1,), {}), ((1, "z"), {"b": 9, "c": 8}), ((), {"a": 1, "d": "q"})],
    "NotInInit": [((1,), {}), ((), {"a": 3})],
    "PostInit": [((1,), {}), ((4, [9]), {})],
}


@pytest.mark.parametrize("reference, quick", _twins(), ids=lambda c: c.__name__)
def test_it_builds_what_the_dataclass_builds(reference: type, quick: type) -> None:
    assert str(inspect.signature(quick.__init__)) == str(inspect.signature(reference.__init__))
    for args, kwargs in _CALLS[reference.__name__]:
        ours, theirs = quick(*args, **kwargs), reference(*args, **kwargs)
        assert ours.__dict__ == theirs.__dict__
        assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]
        assert ours == quick(*args, **kwargs)
        for f in dataclasses.fields(quick):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(ours, f.name, None)
    if reference.__name__ == "Plain":  # a factory is called for each instance
        assert quick(1).c is not quick(1).c
    with pytest.raises(TypeError):
        quick()  # the required field is still required


def test_it_refuses_what_it_does_not_copy() -> None:
    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        b: dataclasses.InitVar[int] = 0

    for cls in (Mutable, Slotted, WithInitVar):
        with pytest.raises(TypeError, match="plain frozen dataclass"):
            quick_init(cls)


def _quick_classes() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(runner.__path__, "runner."):
        if info.name == "runner.__main__":
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and "_dataclass_init" in value.__dict__:
                found.append(value)
    return sorted(set(found), key=lambda c: c.__qualname__)


def test_every_runner_record_with_it_keeps_the_dataclass_signature_and_fields() -> None:
    classes = _quick_classes()
    assert {"Usage", "Cost", "Completion", "Result", "Preflight"} <= {c.__name__ for c in classes}
    for cls in classes:
        ours, theirs = inspect.signature(cls.__init__), inspect.signature(cls._dataclass_init)
        assert str(ours) == str(theirs), cls
        args = {
            name: object()
            for name, p in list(theirs.parameters.items())[1:]
            if p.default is inspect.Parameter.empty
        }
        built, reference = object.__new__(cls), object.__new__(cls)
        cls.__init__(built, **args)
        cls._dataclass_init(reference, **args)
        assert built.__dict__.keys() == reference.__dict__.keys(), cls
        for name, value in reference.__dict__.items():
            assert built.__dict__[name] == value or type(value) is type(built.__dict__[name])
