"""The code a step runs: its script or function file, the project-local modules they import, and the
files it declares with ``code_files``; each by a location-independent name and the sha256 of its bytes.

Imports are found statically (``ast``), never by importing anything: ``import a.b``, ``from a import
b`` and relative imports, wherever they are in the file (inside functions and ``try`` blocks too, so a
conditional import counts). A module is *project-local* when it resolves to a file under one of the
roots: the importing script's own folder (Python puts it first on ``sys.path``), the step's base folder
(the spec's folder) and Airflow's dags folder. Installed packages never resolve there and are left
out. What ``ast`` cannot see (``importlib.import_module(name)``, files opened by path) is declared with
``code_files``.

A file is named by its path relative to the root it was found under (``abalone/lib/features.py``), so
a copy of the dags folder elsewhere gives the same names and digests. No Airflow import here.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# A bound on the files one step's imports may pull in (a project, not a site-packages).
MAX_CODE_FILES = 2000
# Parsed files, by (path, size, mtime, ctime): a DAG file's steps often share their helpers.
_PARSED: dict[tuple[str, int, int, int], tuple[str, tuple[tuple[str, int], ...]]] = {}


def file_digest(path: Path) -> str:
    """sha256 hex of a file's bytes (code files are small)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parsed(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    """(digest, imports) of a Python file; imports are (dotted name, relative level) pairs."""
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    cached = _PARSED.get(key)
    if cached is not None:
        return cached
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    imports: list[tuple[str, int]] = []
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError):
        tree = None  # the script fails when it runs; its bytes are still in the digest
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports.extend((alias.name, 0) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                imports.append((base, node.level))
                # ``from a import b``: b may be a submodule a/b.py, or a name defined in a/__init__.py.
                imports.extend(
                    (f"{base}.{alias.name}" if base else alias.name, node.level)
                    for alias in node.names
                    if alias.name != "*"
                )
    result = (digest, tuple(imports))
    if len(_PARSED) > 10_000:
        _PARSED.clear()
    _PARSED[key] = result
    return result


# Module lookups remembered during one DAG-file parse (see :func:`remembered_lookups`); None outside.
_LOOKUPS: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("mlpipe_lookups", default=None)


@contextmanager
def remembered_lookups() -> Iterator[None]:
    """Remember where modules and roots are found, and what steps' code files hold, until the block ends.

    The DAG-file loader builds every pipeline of a folder in one such block: its steps have the same
    few roots (a script's folder, the spec's folder, the dags folder) and import the same modules
    from them, and resolving and looking each one up again for every step (a few ``stat`` calls each),
    then reading and hashing the same scripts and modules again, was a good part of a large file's
    parse. Files do not change within one parse; a later parse looks and reads again.
    """
    token = _LOOKUPS.set({})
    try:
        yield
    finally:
        _LOOKUPS.reset(token)


def remembered(key: tuple[Any, ...], find: Callable[[], Any]) -> Any:
    """``find()``, remembered under ``key`` within :func:`remembered_lookups` (computed each time outside)."""
    lookups = _LOOKUPS.get()
    if lookups is None:
        return find()
    if key not in lookups:
        lookups[key] = find()
    return lookups[key]


def _module_files(name: str, folder: Path) -> list[Path]:
    """The files that importing the dotted ``name`` from ``folder`` runs: each package's
    ``__init__.py`` on the way and the module itself; empty unless the whole name resolves there."""
    if not name:
        return []
    return list(remembered(("module", name, folder), lambda: _find_module_files(name, folder)))


def _find_module_files(name: str, folder: Path) -> list[Path]:
    parts = name.split(".")
    found: list[Path] = []
    current = folder
    for index, part in enumerate(parts):
        if index == len(parts) - 1 and (current / f"{part}.py").is_file():
            return [*found, current / f"{part}.py"]
        package = current / part
        if not package.is_dir():
            return []
        if (package / "__init__.py").is_file():
            found.append(package / "__init__.py")
        current = package
    return found  # a package: its __init__ files (none for a namespace package)


def _resolved_roots(roots: tuple[str, ...]) -> tuple[Path, ...]:
    """The existing folders among ``roots``, resolved, without repeats, in order."""
    resolved: list[Path] = []
    for root in roots:
        path = Path(root).resolve()
        if path not in resolved and path.is_dir():
            resolved.append(path)
    return tuple(resolved)


def _relative_folder(path: Path, level: int) -> Path:
    """The folder a relative import of ``level`` dots in ``path`` starts from."""
    folder = path.parent
    for _ in range(level - 1):
        folder = folder.parent
    return folder


class CodeInventory:
    """Collects the files a step runs, each named relative to the root it lies under.

    :param roots: folders whose modules are the project's own (first match names a file).
    """

    def __init__(self, roots: Iterable[Path | None]) -> None:
        names = tuple(str(root) for root in roots if root is not None)
        self.roots: list[Path] = list(remembered(("roots", names), lambda: _resolved_roots(names)))
        self.files: dict[str, str] = {}
        self._seen: set[Path] = set()

    def name(self, path: Path) -> str:
        """``path`` relative to the first root that holds it (its file name if none does)."""
        for root in self.roots:
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return path.name

    def add_file(self, path: Path, *, scan: bool = True, record: bool = True) -> None:
        """Add a file (and, for Python, the project-local modules it imports).

        :param record: False for a file already in the digest by other means (the step's script).
        """
        path = path.resolve()
        if path in self._seen or len(self._seen) >= MAX_CODE_FILES:
            return
        self._seen.add(path)
        if not path.is_file():
            if record:
                self.files[self.name(path)] = "missing"
            return
        if path.suffix == ".py" and scan:
            digest, imports = _parsed(path)
            if record:
                self.files[self.name(path)] = digest
            for module, level in imports:
                self._add_import(path, module, level)
        elif record:
            self.files[self.name(path)] = file_digest(path)

    def _add_import(self, importer: Path, module: str, level: int) -> None:
        if not module:
            return  # ``from . import x`` is also listed as module "x" at that level
        folders = [_relative_folder(importer, level)] if level else self.roots
        for folder in folders:
            files = _module_files(module, folder)
            if files and all(self._under_roots(path) for path in files):
                for path in files:
                    self.add_file(path)
                return

    def _under_roots(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved.is_relative_to(root) for root in self.roots)

    def add_declared(self, patterns: Sequence[str], base_dir: Path | None) -> None:
        """Add the files named by ``code_files``: files, folders (every file below) or globs."""
        for pattern in patterns:
            for path in declared_paths(pattern, base_dir):
                self.add_file(path)


def declared_paths(pattern: str, base_dir: Path | None) -> list[Path]:
    """The files one ``code_files`` entry names (empty when it names nothing)."""
    candidate = Path(pattern).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    if any(char in pattern for char in "*?["):
        matches = [Path(item) for item in glob.glob(str(candidate), recursive=True)]
    else:
        matches = [candidate] if candidate.exists() else []
    files: list[Path] = []
    for match in sorted(matches):
        if match.is_dir():
            for folder, dirnames, filenames in os.walk(match):
                dirnames[:] = sorted(name for name in dirnames if not _skipped(name))
                files.extend(Path(folder) / name for name in sorted(filenames) if not _skipped(name))
        elif match.is_file():
            files.append(match)
    return files


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith(".pyc")


def callable_file(function: Callable[..., Any]) -> Path | None:
    """The source file of a callable, if it has one."""
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        return None
    return Path(source) if source else None


def module_file(module: str, roots: Iterable[Path | None]) -> Path | None:
    """The file of a dotted module name under one of ``roots`` (a project-local module), if any."""
    for root in roots:
        files = _module_files(module, Path(root)) if root is not None else []
        if files:
            return files[-1]
    return None
