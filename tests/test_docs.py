"""The documentation tells the truth: every command has help and is in the README, the README's
two fresh-machine commands are the ones CI runs, every doc link resolves, and every example spec
validates."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.spec.load import check_paths

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = cli.list_commands(click.Context(cli))


def test_there_are_commands() -> None:
    assert {"exec", "validate", "render", "mock-server"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_documented(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert len(command.help or "") > 20, f"`runner {name}` needs a help text"
    assert f"runner {name}" in README, f"`runner {name}` is missing from README.md"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "pip install -e '.[test]' && pytest -q -n auto"
    assert command in README
    assert command in ci


def test_readme_quickstart_runs_the_city_example_in_mock_mode() -> None:
    assert "runner exec prompts/city.yaml --var city=Paris --mock" in README


@pytest.mark.parametrize(
    "doc",
    sorted(p.relative_to(ROOT).as_posix() for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")]),
)
def test_relative_links_resolve(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (ROOT / doc).parent.joinpath(target).exists(), f"{doc}: broken link {target}"


def test_every_example_spec_validates() -> None:
    specs = sorted((ROOT / "prompts").glob("*.yaml"))
    assert len(specs) >= 3
    assert check_paths([str(p) for p in specs]) == []


def test_error_tree_is_the_same_in_code_and_docs() -> None:
    from runner import errors

    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.RunnerError):
            assert name in doc, f"docs/errors.md does not mention {name}"
            assert name in (errors.__doc__ or ""), f"the errors.py docstring lacks {name}"


def test_the_readme_spec_example_validates(tmp_path: Path) -> None:
    import shutil

    block = README.split("## A spec", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")  # the project's folder
    (tmp_path / "prompts").mkdir()
    spec = tmp_path / "prompts" / "readme.yaml"
    spec.write_text(block, encoding="utf-8")
    assert check_paths([str(spec)]) == []


def test_the_readme_price_override_example_loads(tmp_path: Path) -> None:
    from runner.spec.load import load_project_config

    block = README.split("## Prices and tokens", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "runner.yaml"
    path.write_text(block, encoding="utf-8")
    prices = load_project_config(path).prices
    assert set(prices) == {"my-finetune", "ft:gpt-4o-mini:acme:*"}


# --- every YAML and JSON block in the docs parses, and loads where it is a whole thing ---------

DOCS = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
_BLOCK = re.compile(r"^```(yaml|json)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{doc.relative_to(ROOT).as_posix()}:{line}", match[1], match[2]))
    return found


BLOCKS = _blocks()
# A spec fragment (a few top-level fields) is checked inside this spec.
_BASE_SPEC = {
    "name": "doc",
    "model": "gpt-4o-mini",
    "inputs": {"type": "object", "properties": {"city": {"type": "string"}}},
    "messages": [{"role": "user", "content": "Tell me about {{ city }}."}],
    "output": {"schema": {"type": "object"}, "strict": False},
}


def test_the_docs_have_blocks_to_check() -> None:
    kinds = {kind for _, kind, _ in BLOCKS}
    assert kinds == {"yaml", "json"} and len(BLOCKS) >= 10


@pytest.mark.parametrize(("where", "kind", "body"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_every_doc_block_parses_and_loads(where: str, kind: str, body: str, tmp_path: Path) -> None:
    import json
    import shutil

    import jsonschema
    import yaml

    from runner.spec.load import load_project_config
    from runner.spec.model import _SPEC_PROPERTIES

    value = yaml.safe_load(body) if kind == "yaml" else json.loads(body)
    if isinstance(value, list):  # `runner report --format json`: a list of groups
        assert value and all(isinstance(g, dict) and "calls" in g for g in value), where
        return
    if not isinstance(value, dict):
        assert value is None, f"{where}: a block of a kind this test does not know"
        return  # a comment-only block (the yaml-language-server line)
    if "v" in value and "request_sha256" in value:  # a ledger line
        schema = json.loads((ROOT / "schemas" / "ledger-line.schema.json").read_text("utf-8"))
        jsonschema.Draft202012Validator(schema).validate(value)
    elif "prices" in value:  # runner.yaml: the real loader must take it
        path = tmp_path / "runner.yaml"
        path.write_text(body, encoding="utf-8")
        assert load_project_config(path).prices
    elif set(value) <= set(_SPEC_PROPERTIES):  # a spec, or a fragment of one
        # The block's own text (runner reads YAML 1.2: `on:` is a key, not true), after the
        # base spec's other fields when it is a fragment.
        base = {k: v for k, v in _BASE_SPEC.items() if k not in value}
        text = body
        if not {"model", "messages"} <= set(value):
            text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items()) + body
        shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
        (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
        # The example specs beside it, so a fragment may name one (a judge: judge.yaml).
        shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
        path = tmp_path / "prompts" / "doc.yaml"
        path.write_text(text, encoding="utf-8")
        assert check_paths([str(path)]) == [], where
    elif "jobs" in value:  # a GitHub Actions workflow: each step runs or uses something
        for job in value["jobs"].values():
            assert all("run" in step or "uses" in step for step in job["steps"]), where
    elif "suggested" in value:  # `runner probe --json`: every row, then the suggestions
        from runner.probe import CAPABILITIES

        assert list(value) == [*CAPABILITIES, "suggested"], where
        assert all(list(value[c]) == ["verdict", "detail"] for c in CAPABILITIES), where
        assert all(list(s) == ["setting", "why"] for s in value["suggested"]), where
    else:
        assert "error" in value, f"{where}: a block of a kind this test does not know"


@pytest.mark.parametrize("name", COMMANDS)
def test_runner_help_lists_each_command_as_its_own_help_says(name: str) -> None:
    """`runner --help` shows one-line helps kept beside the lazy command table; each must be
    the command's own (its docstring's first sentence), so the two cannot drift apart."""
    from runner.cli import COMMANDS as TABLE

    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert TABLE[name][2] == command.get_short_help_str(10**6)


def test_runner_help_loads_no_command() -> None:
    """The point of the lazy table: `runner --help` imports no command module."""
    from _fresh_python import python_output

    code = (
        "import sys; from runner.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='runner')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('runner.cli.')))"
    )
    assert python_output(code).strip().splitlines()[-1] == "[]"


def test_the_readme_performance_tables_are_saved_benchmark_runs() -> None:
    section = README[README.index("## Performance") :]
    section = section[: section.index("\n## ")]
    files = set(re.findall(r"\]\((bench/results/[^)]+\.md)\)", section))
    assert files, "the Performance section links to the results files its tables come from"
    saved = ""
    for name in files:
        text = (ROOT / name).read_text(encoding="utf-8")
        saved += text[text.index("## Summary: headline figures") :]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert len(table) > 10
    missing = [row for row in table if row not in saved]
    assert not missing, f"README rows in none of {sorted(files)}: {missing}"


def _test_names(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_promises_page_names_exists() -> None:
    """docs/promises.md names the tests behind each promise: `file.py::test_name`, then
    `::test_name` for more of the same file. A renamed or deleted test breaks the page."""
    text = (ROOT / "docs" / "promises.md").read_text(encoding="utf-8")
    named: list[tuple[str, str]] = []
    current = ""
    for file, test in re.findall(r"`((?:tests/[\w/]+/)?test_\w+\.py)?::(test_\w+)`", text):
        current = file or current
        named.append((current, test))
    assert len(named) > 60, "the page names the tests behind its promises"
    missing = []
    for file, test in named:
        path = ROOT / (file if file.startswith("tests/") else f"tests/hostile/{file}")
        if not path.is_file() or test not in _test_names(path):
            missing.append(f"{file}::{test}")
    assert not missing, f"docs/promises.md names tests that do not exist: {missing}"


_PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PYTHON_BLOCKS = [
    (f"{doc.relative_to(ROOT).as_posix()}:{text[: m.start()].count(chr(10)) + 1}", m[1])
    for doc in DOCS
    for text in [doc.read_text(encoding="utf-8")]
    for m in _PYTHON.finditer(text)
]


def test_the_docs_have_python_blocks() -> None:
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.parametrize(("where", "body"), PYTHON_BLOCKS, ids=[b[0] for b in PYTHON_BLOCKS])
def test_every_python_block_parses_and_imports_what_exists(where: str, body: str) -> None:
    """A Python example in the docs parses, and every `runner` module and name it imports is
    there (docs/mock.md once imported `runner.mockserver`, which never existed)."""
    import ast
    import importlib
    import importlib.util

    tree = ast.parse(body, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "runner":
                    importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "runner":
            assert node.module is not None
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{where}: {node.module} has no {alias.name}"
