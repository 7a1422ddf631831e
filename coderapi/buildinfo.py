"""What this build is: version, source URL and the API versions coderd reports."""

from __future__ import annotations

import pathlib
import subprocess
from dataclasses import dataclass

from coderapi import __version__

AGENT_API_VERSION = "1.0"
PROVISIONER_API_VERSION = "1.14"


@dataclass(frozen=True)
class Build:
    version: str
    external_url: str
    commit: str


def detect(git_commit: str = "", source_url: str = "") -> Build:
    """The running build. `git_commit` (CODERAPI_GIT_COMMIT) wins; otherwise the checkout holding the
    package is asked, when there is one. `external_url` is the commit's page in the source repository
    (CODERAPI_SOURCE_URL), the repository itself without a commit, and "" when no repository is known:
    it never points at a page that does not exist."""
    commit = git_commit.strip().lower() or _checkout_commit()
    version = "v" + __version__
    if commit and "+" not in version:
        version += "+" + commit[:7]
    external_url = f"{source_url}/commit/{commit}" if source_url and commit else source_url
    return Build(version=version, external_url=external_url, commit=commit)


def _checkout_commit() -> str:
    root = pathlib.Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    sha = out.stdout.strip()
    return sha if len(sha) == 40 and all(c in "0123456789abcdef" for c in sha) else ""
