"""runner.batch imports its modules on first use: a data-set run asks only which rows wait in a
batch, and importing the whole package was about 10 ms of its start."""

from __future__ import annotations

from _fresh_python import python_output

import runner.batch


def test_every_name_the_package_offers_is_there() -> None:
    assert sorted(runner.batch.__all__) == sorted(runner.batch._WHERE)
    for name in runner.batch.__all__:
        value = getattr(runner.batch, name)
        assert value.__module__ == f"runner.batch.{runner.batch._WHERE[name]}", name


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import() -> None:
    try:
        runner.batch.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("no AttributeError")
    from runner.batch import build

    assert build.__name__ == "runner.batch.build"


def test_asking_for_rows_in_open_batches_imports_only_the_state_module() -> None:
    code = (
        "import sys\n"
        "from runner.batch import rows_in_open_batches\n"
        "print(sorted(m for m in sys.modules if m.startswith('runner.batch')))\n"
    )
    assert python_output(code).strip() == "['runner.batch', 'runner.batch.state']"
