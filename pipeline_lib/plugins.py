"""Methods that live outside the package: the folders params.yaml lists under ``method_paths``.

Each folder holds ``methods/`` (``<name>.py``, ``<name>_params.py``, ``<name>_spec.py``, laid out as in
``pipeline_lib/methods/``) and ``stages/`` (its stage CLIs). They are searched as part of the packages
``pipeline_lib.methods`` and ``stages`` (each package's ``__path__``), so the registry, the params sections, the
DAG's code dependencies and ``python -m stages.<name>`` find a plugin's modules as they find the project's: a
plugin edits no project file. The list is read from ``params.yaml`` in the working directory (the project root,
where both runners start their stages), its folders relative to it; :class:`pipeline_lib.config.Params`
validates it. Nothing here imports more than ``yaml``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

#: the params.yaml key
KEY = "method_paths"
#: libyaml's safe loader where PyYAML has it (0.2 s less than the pure-Python one per read of params.yaml); also
#: the base of config's params loader
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: the project's own methods
METHODS_DIR = Path(__file__).resolve().parent / "methods"


@functools.cache
def _folders(params_file: Path) -> tuple[Path, ...]:
    try:
        raw = yaml.load(params_file.read_text(), Loader=SAFE_LOADER)
    except (OSError, yaml.YAMLError):  # load_params says what is wrong with the file
        return ()
    listed = raw.get(KEY) if isinstance(raw, dict) else None
    if not isinstance(listed, list):
        return ()
    return tuple((params_file.parent / str(folder)).resolve() for folder in listed)


def method_paths() -> tuple[Path, ...]:
    """The plugin folders that ``./params.yaml`` lists (absolute; none where it lists none)."""
    return _folders(Path("params.yaml").resolve())


def search_path(package: str) -> list[str]:
    """The plugin folders' subfolders for ``package`` (``methods`` or ``stages``) that exist."""
    return [str(folder / package) for folder in method_paths() if (folder / package).is_dir()]


def method_modules(suffix: str) -> dict[str, Path]:
    """The methods' modules named ``<name><suffix>.py`` (``_params``, ``_spec``, ``_papers``), found by file name in
    ``pipeline_lib/methods`` and the plugin folders' ``methods/``: module stem -> file (nothing is imported)."""
    folders = [METHODS_DIR, *map(Path, search_path("methods"))]
    return {path.stem: path for folder in reversed(folders) for path in sorted(folder.glob(f"*{suffix}.py"))}


def extend(path: list[str], package: str) -> None:
    """Append the plugin folders for ``package`` to a package's ``__path__`` (once each)."""
    path.extend(p for p in search_path(package) if p not in path)
