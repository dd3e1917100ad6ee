"""The method registry: every method declares itself once, next to its code.

A method is three modules in ``pipeline_lib/methods/``: ``<name>.py`` holds the algorithm (torch),
``<name>_params.py`` its params.yaml section (pydantic classes, found by :func:`pipeline_lib.config.params_model`)
and ``<name>_spec.py`` its declaration, a light module with one :class:`Method` called ``METHOD``:

- its report rows (:class:`Row`: label, whether it reads target labels, the model-selection note, the papers'
  numbers; its :class:`Model`, the checkpoint ``evaluate`` scores and the function that loads it; its
  :class:`Plan`, the experiments and seeds it runs on; its report :class:`Extras`);
- its stages per seed (:class:`StageSpec`: command, artifact inputs and outputs, params keys,
  the domains it reads, the training curves its history holds, the figures it shows in
  ``snakemake --report``) and any per-experiment stages;
- its artifact paths, and a check of an experiment's params.

The DAG (:mod:`pipeline_lib.dag`), the report, ``evaluate`` and the params validation iterate over
:func:`methods`; none of them names a method. Modules are found by name (``*_spec.py``,
``*_params.py``), so a new method adds files and edits none.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pipeline_lib import paths
from pipeline_lib.config import ExperimentParams, Params, Task
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError

if TYPE_CHECKING:
    from pipeline_lib.paper_numbers import PaperValue

TASKS: tuple[Task, ...] = ("classification", "segmentation")
#: params keys every training or evaluation stage reads (the resolved values depend on them)
RUN_KEYS = ("profile", "device", "threads_per_job")
#: params keys every training stage reads besides those (when it stops as diverged)
TRAIN_KEYS = ("divergence",)
#: params keys of a stage that keeps a checkpoint series (which epochs)
SERIES_KEYS = ("selection.every", "selection.keep")


@dataclass(frozen=True)
class Experiment:
    """One experiment of params.yaml, as the stage builders see it."""

    params: Params
    name: str

    @property
    def settings(self) -> ExperimentParams:
        """The experiment's entry in params.yaml (``experiments.<name>``)."""
        return self.params.experiments[self.name]

    @property
    def source(self) -> str:
        return self.settings.source

    @property
    def target(self) -> str:
        return self.settings.target

    @property
    def backbone(self) -> str:
        return self.settings.backbone

    @property
    def task(self) -> Task:
        return self.params.backbones[self.backbone].task

    @property
    def arch(self) -> str:
        return self.params.backbones[self.backbone].arch

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.params.experiment_seeds(self.name)

    @property
    def rows(self) -> tuple[str, ...]:
        """The report rows (params ``methods``; left out: every row of the track)."""
        return self.settings.methods if self.settings.methods is not None else default_rows(self.task, self)

    def row_seeds(self, name: str) -> tuple[int, ...]:
        """The seeds row ``name`` runs: the experiment's, or their first ``n_seeds`` where the row's section
        limits them (:attr:`Plan.seeds_from`)."""
        section = rows()[name].plan.seeds_from if name in rows() else None
        n = self.section(section).n_seeds if section else None
        return self.seeds[:n] if n else self.seeds

    def wants(self, *names: str) -> bool:
        """Whether the experiment reports any of ``names``, or a row that builds on one of them."""
        needed = set(self.rows)
        for name in self.rows:
            needed |= set(rows()[name].plan.requires) if name in rows() else set()
        return bool(set(names) & needed)

    def section(self, name: str) -> Any:
        """The params section ``name`` of this experiment's track."""
        return self.params.section(name, self.backbone)

    def key(self, section: str) -> str:
        """The params.yaml key of a section on this experiment's track (``gam`` or ``segmentation.gam``)."""
        return self.params.track(self.backbone).prefix + section

    @property
    def keys(self) -> tuple[str, ...]:
        """Params keys every model stage of the experiment reads."""
        return RUN_KEYS + (f"experiments.{self.name}.source", f"experiments.{self.name}.target",
                           f"experiments.{self.name}.backbone", f"backbones.{self.backbone}")

    @property
    def train_keys(self) -> tuple[str, ...]:
        """Params keys every training stage of the experiment reads: :attr:`keys` and :data:`TRAIN_KEYS`."""
        return self.keys + TRAIN_KEYS

    def artifact(self, domain: str) -> str:
        """What ``prepare`` writes for ``domain`` (an .npz, or the .json index of a streamed dataset)."""
        return str(resolve_domain(self.params, domain).artifact)

    @property
    def data(self) -> tuple[str, str]:
        """The prepared source and target domains (artifact paths)."""
        return self.artifact(self.source), self.artifact(self.target)

    def source_model(self, seed: int) -> Path:
        return paths.supervised_model(self.source, self.backbone, seed)

    def confusion_title(self, row: str) -> str:
        """The title of a report row's target confusion matrix (the report's picture and DVC's plot)."""
        return f"{self.name}: {rows()[row].label} on {self.target} test (seeds summed)"

    def figure(self, path: str | Path, caption: str, subcategory: str, *, row_key: str = "",
               **labels: object) -> Figure:
        """One of the experiment's figures: shown under the experiment's name, in ``subcategory``
        (the method, the paper's name), told apart from the others there by ``labels``."""
        return Figure(str(path), caption, self.name, subcategory, tuple((k, str(v)) for k, v in labels.items()),
                      row_key)


@dataclass(frozen=True)
class Curve:
    """One line of the report's training-curve figure: a column of a stage's history CSV."""

    panel: str
    series: str
    column: str
    csv: str


def monitor_curves(exp: Experiment, label: str, seed: int, csv: Path) -> tuple[Curve, ...]:
    """The per-epoch target metric every feature-level stage logs (GAM Fig. 5; monitoring only)."""
    metric = "accuracy" if exp.task == "classification" else "mIoU"
    return (Curve(f"target test {metric} per epoch (GAM Fig. 5; monitoring only, never used to select)",
                  f"{label}, seed {seed}", "target_metric", str(csv)),)


#: the caption files of the report's figures (read by ``snakemake --report`` only, never by a stage)
CAPTIONS = Path("reports/captions")


@dataclass(frozen=True)
class Figure:
    """An output a stage shows in ``snakemake --report``, with its caption, where it is filed and its labels.

    ``caption`` names ``reports/captions/<caption>.rst`` (one file per kind of figure, the same for every job
    of a rule; Jinja sees ``snakemake.wildcards``); ``category`` is the experiment (or "Domains"),
    ``subcategory`` the method, ``labels`` tell the figures of one subcategory apart (the same keys for all of
    them). A folder is shown file by file: it holds one ``<row>.png`` per report row, and each file is
    labelled ``row_key: <the row's label>``.
    """

    path: str
    caption: str
    category: str
    subcategory: str
    labels: tuple[tuple[str, str], ...] = ()
    row_key: str = ""

    @property
    def caption_file(self) -> str:
        return str(CAPTIONS / f"{self.caption}.rst")


@dataclass(frozen=True)
class Plot:
    """A DVC plot (dvc.yaml's top-level ``plots``) of one of a stage's outputs: a data file drawn with ``template``
    (DVC's, or one of the project's in ``.dvc/plots/``), an image, or a folder of either."""

    path: str
    title: str = ""
    template: str = ""
    x: str = ""
    y: str = ""
    x_label: str = ""
    y_label: str = ""

    def entry(self) -> str | dict[str, dict[str, str]]:
        """The plot as dvc.yaml lists it: its path, with the properties that are set."""
        props = {k: v for k, v in (("template", self.template), ("x", self.x), ("y", self.y), ("title", self.title),
                                   ("x_label", self.x_label), ("y_label", self.y_label)) if v}
        return {self.path: props} if props else self.path


def losses_plot(history: str, title: str) -> Plot:
    """A training history (:mod:`pipeline_lib.history`, long form) as a line per loss term against epoch."""
    return Plot(history, title=title, template="losses", x="epoch", y="value", x_label="epoch", y_label="loss")


@dataclass(frozen=True)
class StageSpec:
    """A stage as a method declares it; the DAG adds its code and domain dependencies.

    ``module`` is the CLI in ``stages/`` (run as ``python3 -m stages.<module>``: ``python3`` exists wherever
    Python 3 does, and ``stages/__init__.py`` switches to the project's ``.venv`` when needed) with ``args``;
    ``deps`` are artifacts only; ``params`` the keys it reads beyond those of its domains;
    ``domains`` the domains whose data it opens; ``modules`` project modules it imports by name;
    ``figures`` the outputs ``snakemake --report`` shows (never a dependency of anything: a caption
    change reruns nothing).
    """

    name: str
    module: str
    args: tuple[tuple[str, Any], ...]
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[str, ...]
    domains: tuple[str, ...] = ()
    backbone: str | None = None
    modules: tuple[str, ...] = ()
    dir_outs: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    curves: tuple[Curve, ...] = ()
    metrics: tuple[str, ...] = ()  # outputs that are DVC metrics (JSON; dvc metrics show/diff, dvc exp show)
    plots: tuple[Plot, ...] = ()  # DVC plots of its outputs (a training history's losses plot is added by the DAG)
    rule: str = ""  # the Snakemake rule it is a job of: ``module`` unless its outputs are laid out otherwise
    #: the checkpoint (one of ``outs``) whose series the stage keeps for ``select`` (the DAG adds the folder
    #: ``paths.series`` of it to the outputs and :data:`SERIES_KEYS` to the params)
    series: str = ""

    @property
    def cmd(self) -> str:
        return " ".join([f"python3 -m stages.{self.module}",  # a name with a space or quote stays one argument
                         *(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in self.args)])


def _no_paths(exp: Experiment, seed: int) -> tuple[Path, ...]:
    return ()


@dataclass(frozen=True)
class Model:
    """What ``evaluate`` scores for a report row: its checkpoint per seed, how to load it, what else it reads."""

    #: the checkpoint of an experiment's seed
    checkpoint: Callable[[Experiment, int], Path]
    #: "module:function" that loads it: (path, BackboneParams) -> (model, meta)
    loader: str = "pipeline_lib.models:load_task_model"
    #: further files the loader reads (e.g. the frozen model behind a calibrator)
    inputs: Callable[[Experiment, int], tuple[Path, ...]] = _no_paths
    #: the stage that trains it keeps a checkpoint series (:attr:`StageSpec.series`): ``select`` chooses among them
    #: and ``evaluate`` scores the one ``selection.validator`` picks (the DAG checks the two declarations agree)
    series: bool = False


def _always(exp: Experiment) -> bool:
    return True


@dataclass(frozen=True)
class Plan:
    """Which experiments and seeds a report row runs on, and what it is built from."""

    #: rows of other methods whose stages this row builds on (e.g. CycleGAN + calibrator on CyCADA's pixel-only model)
    requires: tuple[str, ...] = ()
    #: needs the supervised source model of the experiment (or a function of the experiment saying whether)
    needs_source_model: bool | Callable[[Experiment], bool] = True
    #: a params section whose ``n_seeds`` runs the row on the experiment's first n seeds only (None: all)
    seeds_from: str | None = None
    #: whether an experiment that lists no methods reports the row (e.g. a profile's subset of an ablation)
    by_default: Callable[[Experiment], bool] = _always

    def uses_source_model(self, exp: Experiment) -> bool:
        return self.needs_source_model(exp) if callable(self.needs_source_model) else self.needs_source_model


def _no_inputs(exp: Experiment) -> tuple[Path, ...]:
    return ()


def _no_columns(exp: Experiment) -> dict[str, object]:
    return {}


@dataclass(frozen=True)
class Extras:
    """What the report writes for a row beyond the metrics of its model."""

    #: files the report reads for it (e.g. the calibrator's export record)
    inputs: Callable[[Experiment], tuple[Path, ...]] = _no_inputs
    #: extra report columns
    columns: Callable[[Experiment], dict[str, object]] = _no_columns
    #: the metric columns of a row without a model
    summary: Callable[[Experiment], dict[str, object]] | None = None


@dataclass(frozen=True)
class Row:
    """One report row (a value of ``experiments.<name>.methods``): what it is, with its :class:`Model` (None for a
    row without a model: its :class:`Extras` give the summary), its :class:`Plan` and its report :class:`Extras`.
    The papers' values for it live apart, in its method's ``<method>_papers.py`` (:func:`paper_values`), so that
    editing a paper's number reruns the report alone."""

    name: str
    label: str
    selection: str
    uses_target_labels: bool = False
    tasks: tuple[Task, ...] = TASKS
    #: an upper bound (listed after the adapted rows)
    reference: bool = False
    model: Model | None = None
    plan: Plan = Plan()
    extras: Extras = Extras()


def _no_stages(*_: Any) -> list[StageSpec]:
    return []


def _no_problem(params: Params, experiment: str) -> str | None:
    return None


@dataclass(frozen=True)
class Method:
    """A paper's method: its rows, its params section and its stages."""

    name: str
    paper: str
    order: int
    rows: tuple[Row, ...]
    seed_stages: Callable[[Experiment, int], list[StageSpec]] = _no_stages
    experiment_stages: Callable[[Experiment], list[StageSpec]] = _no_stages
    #: a problem with an experiment's params for this method (one line), or None
    check: Callable[[Params, str], str | None] = _no_problem


@functools.cache
def methods() -> tuple[Method, ...]:
    """Every declared method (``pipeline_lib/methods/*_spec.py``), in their declared order."""
    from pipeline_lib import methods as package
    found = [importlib.import_module(f"{package.__name__}.{info.name}").METHOD
             for info in pkgutil.iter_modules(package.__path__) if info.name.endswith("_spec")]
    return tuple(sorted(found, key=lambda m: (m.order, m.name)))


@functools.cache
def rows() -> dict[str, Row]:
    """Every report row: the methods' rows in method order, upper bounds last."""
    ordered = [r for m in methods() for r in m.rows if not r.reference] + \
        [r for m in methods() for r in m.rows if r.reference]
    names = [r.name for r in ordered]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two methods declare the same row: {sorted(n for n in names if names.count(n) > 1)}")
    return {r.name: r for r in ordered}


@functools.cache
def _papers() -> dict[str, Mapping[tuple[str, str, str], tuple[PaperValue, ...]]]:
    """Each row's papers' values: ``PAPERS`` of every method's ``<method>_papers.py`` that exists (found by name,
    like the specs; the report imports them, no training stage does)."""
    from pipeline_lib import methods as package
    out: dict[str, Mapping[tuple[str, str, str], tuple[PaperValue, ...]]] = {}
    for method in methods():
        name = f"{package.__name__}.{method.name}_papers"
        if importlib.util.find_spec(name) is not None:
            out.update(importlib.import_module(name).PAPERS)
    return out


def paper_values(name: str, source: str, target: str, arch: str) -> tuple[PaperValue, ...]:
    """The papers' values for row ``name`` on source -> target with backbone ``arch`` (or any backbone, "*")."""
    table = _papers().get(name, {})
    return tuple(table.get((source, target, arch), ()) or table.get((source, target, "*"), ()))


def row(name: str) -> Row:
    if name not in rows():
        raise PipelineError(f"unknown row {name!r} (known: {', '.join(rows())})")
    return rows()[name]


def default_rows(task: Task, exp: Experiment | None = None) -> tuple[str, ...]:
    """The rows an experiment reports when params.yaml lists none: every row of its track that the
    experiment ``exp`` takes by default (None: every row of the track)."""
    return tuple(name for name, r in rows().items() if task in r.tasks and (exp is None or r.plan.by_default(exp)))


def check_params(params: Params) -> None:
    """Raise a one-line PipelineError for rows an experiment cannot have (unknown, wrong task, missing settings)."""
    for name, spec in params.experiments.items():
        exp = Experiment(params, name)
        for method in exp.rows:
            if method not in rows():
                raise PipelineError(f"params.yaml: experiments.{name}.methods: unknown row {method!r} "
                                    f"(known: {', '.join(rows())})")
            if exp.task not in rows()[method].tasks:
                raise PipelineError(f"params.yaml: experiments.{name}.methods: {method} is for "
                                    f"{' and '.join(rows()[method].tasks)} experiments, this one is {exp.task}")
        for m in methods():
            if {r.name for r in m.rows} & set(exp.rows):
                problem = m.check(params, name)
                if problem:
                    raise PipelineError(f"params.yaml: experiments.{name}: {problem}")


def method_stages(exp: Experiment) -> list[StageSpec]:
    """Every method stage of an experiment: the per-experiment ones, then seed by seed."""
    out: list[StageSpec] = []
    for m in methods():
        out += m.experiment_stages(exp)
    for seed in exp.seeds:
        for m in methods():
            out += m.seed_stages(exp, seed)
    return out


def selected_rows(exp: Experiment) -> tuple[str, ...]:
    """The experiment's rows whose model comes with a checkpoint series (:attr:`Model.series`): ``select`` chooses
    their checkpoint."""
    return tuple(r for r in exp.rows if (m := rows()[r].model) is not None and m.series)


def check_series(exp: Experiment, stages: list[StageSpec]) -> None:
    """A row declares a series exactly where a stage keeps one for its checkpoint (else a one-line error)."""
    kept = {spec.series for spec in stages if spec.series}
    for name in exp.rows:
        model = rows()[name].model
        if model is None:
            continue
        checkpoint = str(model.checkpoint(exp, exp.row_seeds(name)[0]))
        if model.series != (checkpoint in kept):
            raise RuntimeError(f"row {name}: Model(series={model.series}) but the stage that writes {checkpoint} "
                               f"{'keeps no' if model.series else 'keeps a'} checkpoint series (StageSpec.series)")


def curves(exp: Experiment, stages: list[StageSpec] | None = None) -> list[Curve]:
    """The training curves the report draws: those declared by the experiment's stages (``stages``:
    :func:`method_stages` already built)."""
    seen: set[str] = set()
    out: list[Curve] = []
    for stage in method_stages(exp) if stages is None else stages:
        if stage.name not in seen:
            seen.add(stage.name)
            out += stage.curves
    return out


def load_model(name: str, checkpoint: Path, backbone: Any) -> tuple[Any, dict]:
    """Load a row's checkpoint with the loader it declares."""
    scored = row(name).model
    assert scored is not None, f"{name} has no model"
    module, function = scored.loader.split(":")
    return getattr(importlib.import_module(module), function)(checkpoint, backbone)
