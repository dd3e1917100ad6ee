"""Which source files a stage runs: the import closure of its stage module, read from the source text.

A stage's code dependencies are the project modules (``pipeline_lib.*``, ``stages.*``) that running
it imports, found by parsing ``import`` statements (no module is executed):

- every module-level import is followed, and so is every package whose ``__init__`` runs on the way;
- a function-level import is followed too, except where a dispatcher in ``pipeline_lib.domains`` or
  ``pipeline_lib.models`` picks one *domain's* or *backbone's* module inside a function (``build_domain``,
  ``build_backbone``): those modules are followed only where the stage asks for them (the domain it
  prepares, the backbone it trains), so that editing the DRN code does not rerun the LeNet stages;
- imports under ``if TYPE_CHECKING:`` are skipped (they never run);
- modules found by name at run time are added by who finds them: a stage loads the params module of each
  method section it reads (``pipeline_lib/methods/<name>_params.py``, by :meth:`pipeline_lib.config.Params.section`),
  which the DAG adds from the stage's declared params keys, and a stage that lists the registry's rows names
  the ``*_spec.py`` modules itself.

The end-to-end tests (``tests/test_pipeline_e2e.py``, ``tests/test_pipeline_segmentation_e2e.py``) run
every stage kind with ``PIPELINE_RECORD_MODULES`` set and check that each project module a stage
loaded (``sys.modules``) is among its declared dependencies; ``tests/test_codedeps.py`` pins the rules.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline_lib import plugins

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("pipeline_lib", "stages")
#: packages whose function-level imports pick a domain's or a backbone's module
NARROWED = ("pipeline_lib.domains.", "pipeline_lib.models.")


#: packages a plugin folder extends (:mod:`pipeline_lib.plugins`): package -> its subfolder there
PLUGGABLE = {"pipeline_lib.methods": "methods", "stages": "stages"}


def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (a module or a package's ``__init__.py``), a plugin
    folder's included."""
    parts = name.split(".")
    bases = [ROOT.joinpath(*parts)]
    for package, sub in PLUGGABLE.items():
        if name.startswith(package + "."):
            rest = name[len(package) + 1:].split(".")
            bases += [Path(folder).joinpath(*rest) for folder in plugins.search_path(sub)]
    for base in bases:
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PROJECT


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute name an ``from ... import`` names (relative imports resolved against ``module``)."""
    if node.level == 0:
        return node.module
    parts = module.split(".")
    own = module_file(module)
    is_package = own is not None and own.name == "__init__.py"
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@functools.cache
def imports(module: str) -> tuple[tuple[str, bool], ...]:
    """(imported project module, imported inside a function) for each import of ``module``."""
    path = module_file(module)
    if path is None:
        return ()
    found: list[tuple[str, bool]] = []

    def visit(body: list[ast.stmt], lazy: bool) -> None:
        for node in body:  # imports are statements: walk statement lists only, never expressions
            if isinstance(node, ast.If) and _type_checking(node.test):
                visit(node.orelse, lazy)
                continue
            if isinstance(node, ast.Import):
                found.extend((alias.name, lazy) for alias in node.names if _is_project(alias.name))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, node)
                if target and _is_project(target):
                    for alias in node.names:  # `from pkg import submodule` imports the submodule
                        sub = f"{target}.{alias.name}"
                        found.append((sub if module_file(sub) is not None else target, lazy))
            inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for name in ("body", "orelse", "finalbody"):
                visit(getattr(node, name, None) or [], inner)
            for handler in getattr(node, "handlers", None) or []:
                visit(handler.body, inner)
            for case in getattr(node, "cases", None) or []:
                visit(case.body, inner)

    visit(ast.parse(path.read_text(), str(path)).body, False)
    return tuple(dict.fromkeys(found))


def _with_packages(name: str) -> list[str]:
    """``name`` and the packages above it (their ``__init__`` runs first)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def params_module(section: str) -> str:
    """The params module of a method's section, which :meth:`pipeline_lib.config.Params.section` loads by name."""
    return f"pipeline_lib.methods.{section}_params"


@functools.cache
def params_modules() -> tuple[str, ...]:
    """Every method's params module."""
    return tuple(f"pipeline_lib.methods.{stem}" for stem in sorted(plugins.method_modules("_params")))


@functools.cache
def papers_modules() -> tuple[str, ...]:
    """The methods' papers' values (``<method>_papers.py``), which the report loads by name."""
    return tuple(f"pipeline_lib.methods.{stem}" for stem in sorted(plugins.method_modules("_papers")))


@functools.cache
def spec_modules() -> tuple[str, ...]:
    """The methods' declarations, which :func:`pipeline_lib.registry.methods` loads by name."""
    return tuple(f"pipeline_lib.methods.{stem}" for stem in sorted(plugins.method_modules("_spec")))


def closure(roots: Iterable[str], wanted: Iterable[str] = ()) -> set[str]:
    """Project modules that importing ``roots`` runs; ``wanted``: the domain/backbone modules
    this stage uses (other domains' and backbones' modules are not followed)."""
    allowed = set(wanted)
    seen: set[str] = set()
    todo = [m for root in [*roots, *allowed] for m in _with_packages(root)]
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        for target, lazy in imports(name):
            if lazy and (name + ".").startswith(NARROWED) and target.startswith(NARROWED) and not any(
                    target == a or (target.startswith(a + ".") and a + "." not in NARROWED) for a in allowed):
                continue  # a dispatcher picking one domain's or backbone's module (wanting the dispatcher's
                # package, e.g. a loader in pipeline_lib.models, is not wanting every backbone in it)
            todo.extend(_with_packages(target))
    return seen


def code_deps(roots: Iterable[str], wanted: Iterable[str] = ()) -> tuple[str, ...]:
    """The source files (repo-relative, sorted) of :func:`closure`."""
    return _code_deps(tuple(roots), tuple(sorted(set(wanted))))


@functools.cache
def _code_deps(roots: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
    files = {Path(os.path.relpath(module_file(name), ROOT)).as_posix()  # type: ignore[arg-type]
             for name in closure(roots, wanted)}
    return tuple(sorted(files))
