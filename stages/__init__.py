"""Thin command-line entry points, one per pipeline step (``python -m stages.<name>``).

The pipeline's rules (Snakefile, dvc.yaml) call a bare ``python``. When that is an interpreter
without the project's dependencies (``.venv/bin/snakemake`` or ``.venv/bin/dvc`` run without
activating the environment), importing this package re-executes the same
``python -m stages.<name> ...`` with the project's ``<repo>/.venv/bin/python``; where there is no
such venv it stops with one line on stderr saying how to fix it (exit status 2). The check is
:func:`importlib.util.find_spec` only: no dependency is imported to make it. The environment variable
``PIPELINE_STAGES_REEXEC`` marks the re-executed process, so a venv that lacks the dependencies too gets the
error instead of an exec loop. Once the environment is the project's, the ``stages/`` folders of params.yaml's
``method_paths`` join the package (:mod:`pipeline_lib.plugins`, which imports ``yaml`` only).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

_DEPENDENCIES = ("torch", "pydantic", "yaml")
_REEXEC_MARK = "PIPELINE_STAGES_REEXEC"


def _missing_dependency() -> str | None:
    for name in _DEPENDENCIES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def _module_from_command_line(argv: list[str]) -> str | None:
    """``X`` of ``python [options] -m X ...`` (also ``-mX`` and ``-Im X``); None for a script or ``-c``."""
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-", "--") or not arg.startswith("-"):
            return None  # a script, stdin, or the end of the interpreter's options
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                next(args, None)
            continue
        for i, flag in enumerate(arg[1:], start=2):
            if flag == "m":
                return arg[i:] or next(args, None)
            if flag == "c":
                return None
            if flag in "WX":  # options with a value, attached or next
                if not arg[i:]:
                    next(args, None)
                break
    return None


def _running_module() -> str | None:
    """The ``stages.<name>`` module this interpreter was started to run, if any.

    While a package's ``__init__`` runs under ``python -m``, ``sys.argv[0]`` is just ``"-m"`` and
    ``__main__`` is not yet the module, so the original command line is read first.
    """
    name = _module_from_command_line(list(getattr(sys, "orig_argv", [])))
    if name is None:
        name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    if name is None and sys.argv and sys.argv[0].endswith(".py"):
        script = Path(sys.argv[0]).resolve()
        if script.parent == Path(__file__).resolve().parent:
            name = f"{__name__}.{script.stem}"
    return name if name and name.startswith(__name__ + ".") else None


def _ensure_environment() -> None:
    reexecuted = os.environ.pop(_REEXEC_MARK, None) is not None  # not inherited by the stage's children
    missing = _missing_dependency()
    if missing is None:
        return
    venv = Path(__file__).resolve().parent.parent / ".venv"
    venv_python = venv / "bin" / "python"
    # sys.prefix, not the binary: a venv's python is a symlink to the very interpreter it is based on
    in_venv = Path(sys.prefix).resolve() == venv.resolve()
    module = _running_module()
    if module and not reexecuted and not in_venv and os.access(venv_python, os.X_OK):
        os.environ[_REEXEC_MARK] = "1"
        os.execv(venv_python, [str(venv_python), "-m", module, *sys.argv[1:]])
    sys.stderr.write(f"error: {sys.executable or 'python'} cannot import {missing}: activate the project "
                     "environment (source .venv/bin/activate) or run make install\n")
    raise SystemExit(2)


_ensure_environment()

# a plugin's stage CLIs (params.yaml's method_paths, pipeline_lib.plugins) run as stages.<name> too
from pipeline_lib.plugins import extend  # noqa: E402 (only once the environment is the project's)

extend(__path__, "stages")
