"""`runner init`: a specs repository whose example validates and whose baseline replays; never
a file overwritten; requirements.txt pins the runner as it was installed; the workflow is
docs/ci.md's word for word, and its `run:` steps pass, offline, in a scratch git repository
with a local "origin" — on the first pull request, and through a prompt change end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from runner import scaffold
from runner.cli import cli
from runner.spec.load import check_paths

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ".github/workflows/prompts.yml"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={}, catch_exceptions=False)


def test_init_writes_a_repository_whose_example_replays(tmp_path: Path) -> None:
    result = run("init", "specs")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "specs"
    for path in scaffold.planned(folder):
        assert (folder / path).is_file(), path
        assert f"  {path} " in result.stdout
    assert "  cd specs\n" in result.stdout
    assert check_paths([str(folder / "prompts")]) == []
    ignored = (folder / ".gitignore").read_text().splitlines()
    assert "runs/" in ignored and not any("tests" in line for line in ignored if line[:1] != "#")
    os.chdir(folder)
    result = run("test", "--replay", "tests/baseline.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed"
    lines = [json.loads(line) for line in Path("tests/baseline.jsonl").read_text().splitlines()]
    assert [line["spec"]["path"] for line in lines] == ["prompts/sentiment.yaml"] * 3
    assert all(line["mock"] and line["output"]["text"] for line in lines)


def test_init_never_overwrites_and_writes_nothing_then(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("ours\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "baseline.jsonl").write_text("")
    result = run("init")
    assert result.exit_code == 2
    assert "README.md, tests/baseline.jsonl already exist; nothing was written" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "tests"]
    assert (tmp_path / "README.md").read_text() == "ours\n"
    (tmp_path / "file").write_text("")
    assert run("init", "file").exit_code == 2
    # An empty folder, or one with other files, needs no --force.
    (tmp_path / "empty").mkdir()
    assert run("init", "empty").exit_code == 0
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "main.py").write_text("")
    assert run("init", "busy").exit_code == 0


@pytest.mark.parametrize(
    ("direct_url", "pin"),
    [
        (
            {
                "url": "https://github.com/acme/runner",
                "vcs_info": {"vcs": "git", "requested_revision": "v0.1.0", "commit_id": "abc"},
            },  # noqa: E501
            "prompt-runner @ git+https://github.com/acme/runner@v0.1.0",
        ),
        (
            {
                "url": "https://x:ghp_token@git.acme.io:8443/r.git",
                "vcs_info": {"vcs": "git", "commit_id": "abc123"},
            },  # noqa: E501
            "prompt-runner @ git+https://git.acme.io:8443/r.git@abc123",
        ),
        ({"url": "file:///home/me/runner", "dir_info": {"editable": True}}, "prompt-runner==0.1.0"),
        (None, "prompt-runner==0.1.0"),
    ],
)
def test_requirements_pin_the_runner_as_it_was_installed(direct_url: Any, pin: str) -> None:
    text = scaffold.requirement(json.dumps(direct_url) if direct_url else "")
    assert text.splitlines()[-1] == pin
    assert "token" not in text


def _yaml_blocks(doc: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", doc, flags=re.S | re.M)


def test_the_workflow_in_the_docs_is_the_one_init_writes(tmp_path: Path) -> None:
    assert run("init").exit_code == 0
    written = (tmp_path / WORKFLOW).read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    assert [b for b in _yaml_blocks(docs) if "jobs:" in b] == [written]
    assert written == scaffold.template("prompts.yml")


# --- the workflow's steps, run with bash -------------------------------------------------------


def _git(folder: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """`runner init`, committed on main and pushed to a bare repository named origin."""
    folder = tmp_path / "specs"
    assert run("init", str(folder)).exit_code == 0
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", ".")
    _git(folder, "commit", "-q", "-m", "Prompts, tested by runner")
    _git(folder, "remote", "add", "origin", str(tmp_path / "origin.git"))
    _git(folder, "push", "-q", "origin", "main")
    return folder


class Job:
    """One job of the workflow, its `run:` steps run with bash as GitHub's runner does
    (`bash -e`), `if: failure()` steps only after a failure, `uses:` steps skipped. `pip` is a
    stand-in that records what it was asked to install; `runner` is this one."""

    def __init__(self, folder: Path, name: str, **env: str) -> None:
        workflow = yaml.safe_load((folder / WORKFLOW).read_text(encoding="utf-8"))
        self.steps: list[dict[str, Any]] = workflow["jobs"][name]["steps"]
        self.folder = folder
        bin_dir = folder.parent / "bin"
        bin_dir.mkdir(exist_ok=True)
        pip = bin_dir / "pip"
        pip.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/pip-args"\n')
        pip.chmod(0o755)
        self.pip_args = bin_dir / "pip-args"
        self.summary = folder.parent / "step-summary.md"
        self.env = {
            "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(folder.parent),
            "NO_COLOR": "1",
            "RUNNER_CACHE_DIR": os.environ["RUNNER_CACHE_DIR"],
            "GITHUB_STEP_SUMMARY": str(self.summary),
            **env,
        }

    def run(self) -> list[tuple[str, int, str]]:
        """(step name, exit status, output) of every step that ran."""
        ran: list[tuple[str, int, str]] = []
        failed = False
        for step in self.steps:
            if "run" not in step:
                continue
            condition = step.get("if")
            if (condition == "failure()") != failed and condition != "always()":
                continue
            env = {**self.env, **{k: _secret(v) for k, v in step.get("env", {}).items()}}
            done = subprocess.run(
                ["bash", "-e", "-c", step["run"]],
                cwd=self.folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            ran.append((step.get("name", step["run"]), done.returncode, done.stdout + done.stderr))
            failed = failed or done.returncode != 0
        return ran


def _secret(value: str) -> str:
    return re.sub(r"\$\{\{ secrets\.\w+ \}\}", "", value)  # no secrets here


def test_the_workflow_passes_on_the_first_pull_request(repository: Path) -> None:
    _git(repository, "checkout", "-q", "-b", "first")
    job = Job(repository, "replay", GITHUB_BASE_REF="main")
    ran = job.run()
    assert [(name, status) for name, status, _ in ran] == [
        ("Install runner", 0),
        ("Fetch the main branch's baseline", 0),
        ("Replay the test cases, compared with main", 0),
    ], ran
    assert job.pip_args.read_text() == "install -r requirements.txt\n"
    comment = (repository / "reports" / "comment.md").read_text()
    assert comment.startswith("### runner test: 3 passed, 0 failed")
    assert comment.count("| unchanged |") == 3
    assert "3 passed, 0 failed" in job.summary.read_text()
    assert (repository / "reports" / "junit.xml").is_file()


def test_the_refresh_job_records_new_answers(repository: Path) -> None:
    before = (repository / "tests" / "baseline.jsonl").read_text()
    job = Job(repository, "refresh-baseline", RUNNER_MOCK="1")  # offline: the mock answers
    ran = job.run()
    assert [(name, status) for name, status, _ in ran] == [
        ("Install runner", 0),
        ("Send every test case to the model and record the answers", 0),
    ], ran
    after = (repository / "tests" / "baseline.jsonl").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 6
    assert "3 passed, 0 failed" in (repository / "reports" / "refresh.md").read_text()
    # Without a key, and without the mock, it sends nothing and says why.
    ran = Job(repository, "refresh-baseline").run()
    assert ran[1][1] == 2 and "no API key" in ran[1][2]


def test_a_prompt_change_end_to_end(repository: Path) -> None:
    """docs/ci.md's story: the pull request changes a prompt; CI fails with the request diff;
    the author records the missing cases and commits the baseline's diff; the comment then
    shows each output and cost beside main's."""
    _git(repository, "checkout", "-q", "-b", "calibrate")
    spec = repository / "prompts" / "sentiment.yaml"
    spec.write_text(spec.read_text().replace("from 0 to 1.", "from 0 to 1. Be calibrated."))
    _git(repository, "commit", "-q", "-am", "Ask for calibrated confidence")

    ran = Job(repository, "replay", GITHUB_BASE_REF="main").run()
    assert [(name, status) for name, status, _ in ran][2:] == [
        ("Replay the test cases, compared with main", 1),
        ("Annotate the failing cases", 1),
    ]
    comment = (repository / "reports" / "comment.md").read_text()
    assert comment.startswith("### runner test: 0 passed, 3 failed")
    assert "request changed since it was recorded" in comment
    assert "+Classify the sentiment" in comment and "Be calibrated." in comment
    assert "::error file=prompts/sentiment.yaml,line=" in ran[3][2]

    recorded = subprocess.run(
        ["runner", "test", "--mock", "--replay", "tests/baseline.jsonl", "--record-missing"],
        cwd=repository,
        env={**Job(repository, "replay").env},
        capture_output=True,
        text=True,
    )
    assert recorded.returncode == 0, recorded.stderr
    assert "Recorded 3 calls in tests/baseline.jsonl." in recorded.stderr
    diff = _git(repository, "diff", "--numstat")
    assert diff.split() == ["3", "0", "tests/baseline.jsonl"]
    _git(repository, "commit", "-q", "-am", "Record the new answers")

    ran = Job(repository, "replay", GITHUB_BASE_REF="main").run()
    assert [status for _, status, _ in ran] == [0, 0, 0], ran
    comment = (repository / "reports" / "comment.md").read_text()
    assert comment.startswith("### runner test: 3 passed, 0 failed")
    rows = [line for line in comment.splitlines() if line.startswith("| ✅ | sentiment")]
    assert len(rows) == 3 and all("| changed | +0.0000004 |" in row for row in rows)
    assert '-  "confidence": 0.48,' in comment  # the output's diff against main's answer
