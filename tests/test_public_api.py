"""The public surface: `runner.__all__` is exactly what the package exports, every name resolves,
and importing the package stays light (the CLI's --help depends on it)."""

from __future__ import annotations

from types import ModuleType

from _fresh_python import python_output

import runner


def test_all_names_resolve() -> None:
    for name in runner.__all__:
        assert getattr(runner, name) is not None, name


def test_all_matches_the_public_names() -> None:
    public = {
        n
        for n in dir(runner)
        if not n.startswith("_") and not isinstance(getattr(runner, n), ModuleType)
    }
    # dir() also shows names already resolved lazily; nothing public may exist outside __all__
    assert public - {"annotations", "importlib", "TYPE_CHECKING", "Any"} <= set(runner.__all__)
    assert {"load", "run", "arun", "Session", "Result", "RunnerError", "Usage"} <= set(
        runner.__all__
    )


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        runner.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light() -> None:
    code = (
        "import sys, runner, runner.cli; "
        "heavy = [m for m in ('jinja2', 'jsonschema', 'tiktoken', 'httpx2', 'genai_prices', "
        "'starlette', 'rich', 'yaml', 'tenacity') if m in sys.modules]; print(heavy)"
    )
    assert python_output(code).strip() == "[]"


def test_every_lazy_name_is_in_all() -> None:
    assert set(runner._LAZY) | {"__version__"} == set(runner.__all__)
