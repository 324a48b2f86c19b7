"""A new specs repository: the files `runner init` writes (an example spec and its schema,
runner.yaml, .gitignore, a GitHub Actions workflow, requirements.txt pinning this runner, a
README), never over an existing file. It writes files only: the command records the example's
test baseline. The workflow is also docs/ci.md's, word for word (a test holds them together).
"""

from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from runner._version import __version__
from runner.errors import ConfigError

__all__ = [
    "BASELINE",
    "DISTRIBUTION",
    "EXAMPLE",
    "FILES",
    "REQUIREMENTS",
    "Written",
    "planned",
    "requirement",
    "template",
    "write_project",
]

DISTRIBUTION = "prompt-runner"  # the name on PyPI; the command and the package are `runner`
EXAMPLE = "prompts/sentiment.yaml"
BASELINE = "tests/baseline.jsonl"  # recorded by the command, not written here
REQUIREMENTS = "requirements.txt"
# (where in the new repository, the template's name in files/, what it is for)
FILES = (
    (EXAMPLE, "sentiment.yaml", "an example spec, with three test cases"),
    ("schemas/sentiment.json", "sentiment.json", "its output schema"),
    ("runner.yaml", "runner.yaml", "price overrides; marks the repository's top folder"),
    (".gitignore", "gitignore", "runs/ (the ledgers), reports/ and .venv/"),
    (
        ".github/workflows/prompts.yml",
        "prompts.yml",
        "CI: replay on pull requests, refresh on Mondays",
    ),
    ("README.md", "README.md", "how to run, test and change the prompts"),
)


@dataclass(frozen=True)
class Written:
    """A file `write_project` created, relative to the repository, and what it is for."""

    path: str
    about: str


def template(name: str) -> str:
    """The text of a template shipped in the package (files/NAME)."""
    return (importlib.resources.files(__package__) / "files" / name).read_text(encoding="utf-8")


def planned(folder: Path) -> list[str]:
    """Every path `runner init` creates under `folder`, the baseline included."""
    return [path for path, _, _ in FILES] + [REQUIREMENTS, BASELINE]


def write_project(folder: Path) -> list[Written]:
    """Create the files of a specs repository in `folder` (created if missing). Nothing is
    written when one of them exists already, whatever it is: a ConfigError names them."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"runner init: {folder} is not a folder")
    taken = [path for path in planned(folder) if os.path.lexists(folder / path)]
    if taken:
        names = ", ".join(str(folder / path) for path in taken)
        raise ConfigError(
            f"runner init: {names} already exist{'s' if len(taken) == 1 else ''}; nothing was "
            "written (runner init never overwrites a file: move it away, or init another folder)"
        )
    texts = [(path, template(name), about) for path, name, about in FILES]
    texts.append((REQUIREMENTS, requirement(), "the runner that CI installs"))
    written = []
    for path, text, about in texts:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as f:  # "x": never over a file made meanwhile
            f.write(text)
        written.append(Written(path, about))
    return written


def requirement(installed: str | None = None) -> str:
    """requirements.txt pinning this runner the way it was installed: from a git repository
    (PEP 610's direct_url.json), the same URL and revision; otherwise this version on PyPI.
    `installed` is a direct_url.json text, for tests; by default the installed one's."""
    if installed is None:
        installed = _direct_url()
    origin = _git_origin(installed)
    head = (
        "# The runner this repository's prompts are tested with: pip install -r requirements.txt\n"
    )
    if origin is not None:
        return head + f"{DISTRIBUTION} @ {origin}\n"
    return head + (
        f"# (From PyPI. Before {DISTRIBUTION} is published there, pin its git repository and a "
        "tag instead:\n"
        f"# {DISTRIBUTION} @ git+https://github.com/OWNER/REPOSITORY@v{__version__})\n"
        f"{DISTRIBUTION}=={__version__}\n"
    )


def _direct_url() -> str:
    from importlib import metadata

    try:
        return metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or ""
    except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return ""


def _git_origin(text: str) -> str | None:
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("vcs_info"), dict):
        return None
    url, vcs = found.get("url"), found["vcs_info"]
    if vcs.get("vcs") != "git" or not isinstance(url, str) or url.startswith("file:"):
        return None
    parts = urlsplit(url)
    if parts.username not in (None, "git"):  # a token in the URL stays on this machine
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])
    revision = vcs.get("requested_revision") or vcs.get("commit_id")
    shown = urlunsplit(parts)
    return f"git+{shown}" + (f"@{revision}" if isinstance(revision, str) and revision else "")
