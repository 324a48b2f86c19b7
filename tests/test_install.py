"""runner installed from its wheel works away from the checkout: the wheel is built offline
(hatchling, no build isolation), holds the package data runner reads at run time, and the
README's quick start — a new folder, a venv, the install, `runner init`, `runner exec --mock`,
`runner test --replay`, `runner log` — runs as written, the wheel installed in place of the
`pip install` line (with --no-deps: the dependencies come from this test's environment)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = re.compile(r'^pip install "prompt-runner @ git\+https://\S+@v[\d.]+"$')


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    [built] = out.glob("*.whl")
    return built


def test_the_wheel_is_prompt_runner_with_its_package_data(wheel: Path) -> None:
    assert wheel.name.startswith("prompt_runner-")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {n for n in names if n.startswith("runner/schemas/")}
    assert {f"runner/schemas/{s}" for s in (
        "prompt-spec.schema.json", "ledger-line.schema.json", "runner-config.schema.json"
    )} <= schemas  # fmt: skip
    files = {p.name for p in (ROOT / "runner" / "scaffold" / "files").iterdir()}
    assert {f"runner/scaffold/files/{name}" for name in files} <= names
    assert "runner/py.typed" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "\nName: prompt-runner\n" in text
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "runner = runner.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def _quick_start() -> list[tuple[str, list[str]]]:
    """The README's quick start: each `$ command` with the lines it shows."""
    section = README.split("## Quick start", 1)[1]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


# What differs from run to run: ids, times, latencies.
_VARYING = [
    (re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b"), "<id>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"), "<time>"),
    (re.compile(r"\b\d+ ms\b"), "<n> ms"),
]


def _steady(line: str) -> str:
    for pattern, stand_in in _VARYING:
        line = pattern.sub(stand_in, line)
    return line


def test_the_readme_quick_start_runs_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    steps = _quick_start()
    commands = [command for command, _ in steps]
    assert commands[0] == "mkdir my-prompts && cd my-prompts"
    assert commands[1] == "python3 -m venv .venv && . .venv/bin/activate"
    assert INSTALL.match(commands[2]), commands[2]
    assert [c.split()[:2] for c in commands[3:]] == [
        ["runner", "init"],
        ["runner", "exec"],
        ["runner", "test"],
        ["runner", "log"],
    ]
    assert "--mock" in commands[4] and "--replay" in commands[5]
    # The install, offline: this wheel, and the dependencies of this test's environment seen
    # through a .pth file (the checkout itself is nowhere on the path).
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    install = (
        f"pip install --quiet --no-deps --no-index {wheel} && "
        'printf "%s\\n" ' + " ".join(f"'{d}'" for d in sorted(deps)) + ' > "$(python -c '
        '\'import sysconfig; print(sysconfig.get_paths()["purelib"])\')/_test_deps.pth"'
    )
    script = ["set -e"]
    for n, command in enumerate(commands):
        run = install if n == 2 else command
        script.append(f"echo '<<<step {n}>>>'")
        script.append(f"{run} 2>&1")
    script.append("echo '<<<where>>>'")
    script.append('command -v runner; python -c "import runner; print(runner.__file__)"')
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # python3: this interpreter
        "HOME": str(tmp_path),
        "NO_COLOR": "1",
        "RUNNER_CACHE_DIR": os.environ["RUNNER_CACHE_DIR"],
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    parts = re.split(r"<<<step (\d+)>>>\n", done.stdout.split("<<<where>>>\n")[0])[1:]
    outputs = {int(n): text.splitlines() for n, text in zip(parts[::2], parts[1::2], strict=True)}
    for n, (command, shown) in enumerate(steps):
        if n == 2:
            continue  # the install's own output is pip's
        got = [_steady(line) for line in outputs[n] if not line.startswith("WARNING: Location")]
        assert got == [_steady(line) for line in shown], (command, outputs[n])
    folder = tmp_path / "my-prompts"
    runner_bin, runner_file = done.stdout.split("<<<where>>>\n")[1].split()
    assert Path(runner_bin) == folder / ".venv" / "bin" / "runner"
    assert Path(runner_file).is_relative_to(folder / ".venv")  # the wheel's, not the checkout
    assert (folder / "runs" / "ledger.jsonl").is_file()
