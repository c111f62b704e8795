"""Cookbooks on disk: their files in the Chef server's cookbook-version segments.

A cookbook directory becomes what ``PUT /cookbooks/NAME/VERSION`` takes: every file with
its MD5, sorted into segments as Chef's own loader does (``recipes/*.rb``,
``attributes/*.rb``, ``definitions/*.rb``, everything under ``libraries/``, ``files/`` and
``templates/``, ``*.rb`` under ``resources/`` and ``providers/``, and the files at the top
as ``root_files``); what Chef would not upload (``test/``, ``spec/``, a ``recipes/notes.txt``)
is left out here too. A file in ``templates/`` or ``files/`` is specific to the directory
below (``templates/default/x.erb`` -> ``default``), ``root_default`` when there is none.
Dotfiles are left out (editor and VCS leftovers); a link is followed only to a regular file
inside the cookbook, and anything else is refused. The listing is sorted: the same tree
always gives the same cookbook version.

Which cookbooks a deployment uploads comes from :func:`cookbook_dirs`: those its
barclamps ship in ``barclamps/<name>/cookbooks/<cookbook>/``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from wizard.answers import Answers
from wizard.catalog import Catalog
from wizard.catalog.metadata import Metadata, cookbook_problem, read_metadata

SEGMENTS = ("recipes", "attributes", "definitions", "libraries", "resources", "providers",
            "templates", "files", "root_files")
_FLAT_RB = ("recipes", "attributes", "definitions")
_DEEP_RB = ("resources", "providers")
_SPECIFIC = ("templates", "files")


@dataclass(frozen=True)
class CookbookFile:
    """One file of a cookbook version, and where its bytes are on disk."""

    segment: str
    path: str
    """Relative to the cookbook, with ``/`` (``templates/default/motd.erb``)."""
    checksum: str
    """MD5, hex: the name the server stores the bytes under."""
    source: Path

    @property
    def specificity(self) -> str:
        parts = PurePosixPath(self.path).parts
        if self.segment not in _SPECIFIC:
            return "default"
        return parts[1] if len(parts) > 2 else "root_default"

    def manifest(self) -> dict[str, str]:
        return {"name": PurePosixPath(self.path).name, "path": self.path,
                "checksum": self.checksum, "specificity": self.specificity}

    def read(self) -> bytes:
        """The bytes to upload, which must still be what was listed."""
        data = self.source.read_bytes()
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != self.checksum:
            raise cookbook_problem(self.source, "changed while the cookbook was being "
                                   "uploaded; push again")
        return data


@dataclass(frozen=True)
class Cookbook:
    """A cookbook version read from a directory."""

    directory: Path
    metadata: Metadata
    files: tuple[CookbookFile, ...]

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def checksums(self) -> dict[str, str]:
        """``{path: MD5}`` of every file."""
        return {file.path: file.checksum for file in self.files}

    def recipes(self) -> list[str]:
        """Its recipes as a run list names them (``default`` by the cookbook's name)."""
        names = (PurePosixPath(f.path).stem for f in self.files if f.segment == "recipes")
        return [self.name if stem == "default" else f"{self.name}::{stem}" for stem in names]

    def manifest(self) -> dict[str, Any]:
        """The cookbook version as ``PUT /cookbooks/NAME/VERSION`` takes it."""
        recipes = self.recipes()
        metadata = self.metadata.model_dump() | {
            "recipes": dict.fromkeys(recipes, ""),
            "providing": dict.fromkeys(recipes, ">= 0.0.0"),
        }
        body: dict[str, Any] = {
            "name": f"{self.name}-{self.version}", "cookbook_name": self.name,
            "version": self.version, "json_class": "Chef::CookbookVersion",
            "chef_type": "cookbook_version", "frozen?": False, "metadata": metadata,
        }
        for segment in SEGMENTS:
            body[segment] = [f.manifest() for f in self.files if f.segment == segment]
        return body


def site_cookbooks(catalog: Catalog, barclamps: Iterable[str],
                   vendored: Path | None = None) -> dict[str, Cookbook]:
    """The cookbooks a deployment uploads: those its barclamps ship, and the operator's in
    ``vendored`` (see :func:`vendored_dirs`)."""
    directories = cookbook_dirs(catalog, barclamps)
    if vendored is not None:
        directories += vendored_dirs(vendored)
    return read_cookbooks(directories)


def vendored(answers: Answers) -> Path | None:
    """The answers' directory of vendored cookbooks (``chef.cookbooks_path``), if any."""
    path = answers.chef.cookbooks_path
    return Path(path) if path else None


def cookbook_dirs(catalog: Catalog, barclamps: Iterable[str]) -> list[Path]:
    """The cookbook directories the given barclamps ship, in apply order."""
    return [shipped.directory for name in catalog.apply_order(barclamps)
            for shipped in catalog.entries[name].cookbooks]


def vendored_dirs(directory: Path) -> list[Path]:
    """The cookbooks in a ``berks vendor`` style directory: ``DIR/<cookbook>/``."""
    if not directory.is_dir():
        raise cookbook_problem(directory, "not a directory of cookbooks")
    return sorted(path for path in directory.iterdir()
                  if path.is_dir() and not path.name.startswith("."))


def read_cookbooks(directories: Iterable[Path]) -> dict[str, Cookbook]:
    """Every cookbook, by name; two directories holding one cookbook name is an error."""
    found: dict[str, Cookbook] = {}
    for directory in directories:
        cookbook = read_cookbook(directory)
        other = found.get(cookbook.name)
        if other is not None:
            raise cookbook_problem(cookbook.directory, f"cookbook {cookbook.name!r} is also "
                                   f"in {other.directory}: a site has one of each name",
                                   field="name")
        found[cookbook.name] = cookbook
    return found


def read_cookbook(directory: Path) -> Cookbook:
    """The cookbook in ``directory``: metadata and files; raise
    :class:`wizard.catalog.metadata.CookbookError`."""
    root = Path(os.path.realpath(directory))
    metadata = read_metadata(root)
    files = [_file(segment, root, path) for segment, path in _listing(root)]
    return Cookbook(root, metadata, tuple(sorted(files, key=lambda f: f.path)))


def _listing(root: Path) -> list[tuple[str, Path]]:
    """(segment, path) of every file Chef's loader would upload."""
    found = [("root_files", path) for path in _visible(root) if not _is_dir(path)]
    for segment in SEGMENTS[:-1]:
        top = root / segment
        if not _is_dir(top):
            continue
        if segment in _FLAT_RB:
            found += [(segment, p) for p in _visible(top) if p.suffix == ".rb"
                      and not _is_dir(p)]
        else:
            found += [(segment, p) for p in _walk(top)
                      if segment not in _DEEP_RB or p.suffix == ".rb"]
    return found


def _visible(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def _is_dir(path: Path) -> bool:
    """A directory itself, not a link to one (links get :func:`_file`'s checks)."""
    return path.is_dir() and not path.is_symlink()


def _walk(top: Path) -> list[Path]:
    """Every entry under ``top`` but directories, dotfiles and what is under dot-dirs."""
    found = []
    for entry in _visible(top):
        found += _walk(entry) if _is_dir(entry) else [entry]
    return found


def _file(segment: str, root: Path, path: Path) -> CookbookFile:
    relative = path.relative_to(root).as_posix()
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root):
            raise cookbook_problem(path, f"a link to {target}, outside the cookbook: copy "
                                   "the file in instead", field=relative)
        mode = target.stat().st_mode
    if not stat.S_ISREG(mode):
        what = "a link to a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise cookbook_problem(path, f"{what}: a cookbook holds regular files only",
                               field=relative)
    try:
        checksum = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    except OSError as exc:
        raise cookbook_problem(path, f"cannot read: {exc.strerror}", field=relative) from None
    return CookbookFile(segment, relative, checksum, path)

