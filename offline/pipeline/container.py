"""What SageMaker's container contract says about an image, read from its Dockerfile.

SageMaker runs a job as `docker run <image>`: as the image's `USER` (root when
none is set), with the image's `ENTRYPOINT`, and with the directories it mounts
(`/opt/ml/processing/<input|output>/...`, `/opt/ml/model`, `/opt/ml/input`,
`/opt/ml/output`) owned by root. AWS expects every container to run as root
(CONTRACT_DOC); a non-root user cannot write the mounted outputs
(sagemaker-python-sdk issue 4764). The local run reads the same facts from the
image's Dockerfile and holds each job to them.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.context import IMAGE_NAMES, REPO_ROOT

CONTRACT_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html"
"""'SageMaker AI expects all containers to run with root users.'"""

MOUNT_OWNER_UID = 0
MOUNT_MODE = 0o755
"""Owner and mode of the directories SageMaker mounts into a job: root's, writable by root only."""

_CASE_BRANCH = re.compile(r"^\s*([A-Za-z0-9_|-]+)\)\s*$")
_EXEC = re.compile(r"^\s*exec\s+(.+?)\s*$")


class ImageError(ValueError):
    """An image of the definition cannot be emulated locally; the message says why."""


@dataclass(frozen=True)
class ImageUser:
    """The user a job of the image runs as (its Dockerfile's last USER)."""

    spec: str
    where: str
    """Where it was read, e.g. `ml/images/training/Dockerfile:31`."""

    @property
    def uid(self) -> int | None:
        """Numeric uid (0 for root), None for a named user other than root."""
        name = self.spec.partition(":")[0]
        if name == "root":
            return 0
        return int(name) if name.isdigit() else None

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def can_write_mounts(self) -> bool:
        """Whether this user may create files in a directory SageMaker mounts (root, 0755)."""
        if self.is_root or self.uid == MOUNT_OWNER_UID:
            return True
        return bool(MOUNT_MODE & 0o002)


@dataclass(frozen=True)
class ImageSpec:
    """One image as its Dockerfile describes it."""

    dockerfile: Path
    user: ImageUser
    entrypoint: tuple[str, ...]
    files: Mapping[str, Path]
    """Container path -> local source of every file the Dockerfile COPYs to an absolute path."""

    def command(self, argument: str) -> list[str]:
        """The command `docker run <image> <argument>` runs (the ENTRYPOINT's branch for it).

        An exec-form ENTRYPOINT that is a shell script dispatching on its first argument
        (`case "$1" in train) exec ...`) runs the branch's `exec` command.
        """
        if not self.entrypoint:
            raise ImageError(f"{self.dockerfile}: no exec-form ENTRYPOINT to run {argument!r} with")
        source = self.files.get(self.entrypoint[0])
        if source is None or not source.is_file():
            return [*self.entrypoint, argument]
        branch: str | None = None
        for line in source.read_text().splitlines():
            case = _CASE_BRANCH.match(line)
            if case:
                branch = case.group(1)
                continue
            run = _EXEC.match(line)
            if run and branch is not None and argument in branch.split("|"):
                return shlex.split(run.group(1))
        raise ImageError(
            f"{source}: the image's ENTRYPOINT has no `{argument})` branch with an exec command"
        )


def read_image(dockerfile: Path, context: Path = REPO_ROOT) -> ImageSpec:
    """Parse the final stage of `dockerfile` (build context `context`)."""
    try:
        text = dockerfile.read_text()
    except OSError as error:
        raise ImageError(f"cannot read {dockerfile}: {error.strerror}") from None
    where = _display(dockerfile)
    user = ImageUser("root", f"{where} (no USER: Docker's default)")
    entrypoint: tuple[str, ...] = ()
    files: dict[str, Path] = {}
    for number, instruction, argument in _instructions(text):
        if instruction == "FROM":  # a new stage starts from its base image's defaults
            user = ImageUser("root", f"{where} (no USER: Docker's default)")
            entrypoint, files = (), {}
        elif instruction == "USER":
            user = ImageUser(argument.split()[0], f"{where}:{number}")
        elif instruction == "ENTRYPOINT" and argument.startswith("["):
            entrypoint = tuple(json.loads(argument))
        elif instruction == "COPY":
            parts = [p for p in shlex.split(argument) if not p.startswith("--")]
            if len(parts) == 2 and parts[1].startswith("/"):
                files[parts[1]] = context / parts[0]
    return ImageSpec(dockerfile, user, entrypoint, files)


def repository_of(image_uri: str) -> str:
    """`<registry>/<repository>[:tag|@digest]` -> the repository's last path segment."""
    _, _, path = image_uri.partition("/")
    path = path.split("@", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def local_images() -> dict[str, Path]:
    """Repository name -> Dockerfile of every image the ops stack builds (ml/images/<name>)."""
    return {name: REPO_ROOT / "ml" / "images" / name / "Dockerfile" for name in IMAGE_NAMES}


def image_for(image_uri: str, images: Mapping[str, Path]) -> ImageSpec:
    """The local image a definition's image URI names."""
    name = repository_of(image_uri)
    if name not in images:
        raise ImageError(
            f"the definition runs image {image_uri!r}, which is not built from this "
            f"checkout (local images: {sorted(images)})"
        )
    return read_image(images[name])


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, argument) with continuation lines joined, comments dropped."""
    found: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part and not part.startswith("#"))
        pending = []
        instruction, _, argument = joined.partition(" ")
        found.append((start, instruction.upper(), argument.strip()))
    return found


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
