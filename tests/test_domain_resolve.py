"""resolve_domain: every fact about a domain name from one place, for each kind; check_compatible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_lib import paths
from pipeline_lib.config import parse_params
from pipeline_lib.domains.classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, SYNTHIA_EVAL_CLASSES, default_palette
from pipeline_lib.domains.resolve import Domain, check_compatible, resolve_domain
from pipeline_lib.errors import PipelineError

DIGITS = tuple(str(i) for i in range(10))
ELEVEN = ("road", "lane", "curb", "grass", "tree", "house", "sky", "car", "bike", "person", "sign")


@pytest.fixture
def params(tiny_raw, tmp_path):
    tiny_raw["data"]["folders"].update({
        "mine": {"root": str(tmp_path / "mine"), "classes": list(ELEVEN), "ids": list(range(10, 21)), "ignore_id": 0},
        "city_like": {"root": str(tmp_path / "city"), "classes": list(CITYSCAPES_CLASSES)}})
    tiny_raw["data"]["roots"]["gta5"] = str(tmp_path / "gta")
    return parse_params(tiny_raw)


def _distinct(palette) -> bool:
    return len(set(palette)) == len(palette) and all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in palette)


@pytest.mark.parametrize("name, module, keys", [
    ("mnist5k", "mnist5k", ("prepare.seed", "prepare.mnist5k")),
    ("syndigits", "syndigits", ("prepare.seed", "prepare.syndigits")),
    ("optdigits", "optdigits", ("prepare.seed", "prepare.optdigits")),
    ("mnistm", "mnistm", ("prepare.seed", "prepare.mnistm")),
])
def test_embedded_digits(params, name, module, keys):
    d = resolve_domain(params, name)
    assert (d.name, d.task, d.kind) == (name, "classification", "embedded_digits")
    assert d.artifact == paths.domain_npz(name) == Path(f"data/domains/{name}.npz") and d.in_memory
    assert d.inputs == (("mnist5k",) if name == "mnistm" else ())
    assert d.modules == (f"pipeline_lib.domains.{module}",) and d.prepare_keys == keys and d.stream_keys == ()
    assert d.classes == DIGITS and d.eval_classes == tuple(range(10)) and _distinct(d.palette) and len(d.palette) == 10
    assert d.root is None


def test_mnistm_is_built_from_the_digits_params_name(tiny_raw):
    tiny_raw["prepare"]["mnistm"] = {"digits": "mnist"}
    assert resolve_domain(parse_params(tiny_raw), "mnistm").inputs == ("mnist",)


@pytest.mark.parametrize("name", ["mnist", "usps", "svhn"])
def test_real_digits(params, name):
    d = resolve_domain(params, name)
    assert (d.task, d.kind, d.artifact, d.inputs) == ("classification", "real_digits", paths.domain_npz(name), ())
    assert d.modules == ("pipeline_lib.domains.torchvision_digits",)
    assert d.prepare_keys == ("prepare.seed", "prepare.real", f"data.roots.{name}", "data.download", "data.cache_dir")
    assert d.stream_keys == () and d.classes == DIGITS and d.root == Path(f"data/raw/{name}")


def test_derived_digits_take_their_base(params):
    d = resolve_domain(params, "mnist_odd")
    assert (d.kind, d.task, d.inputs, d.modules) == ("derived", "classification", ("mnist",),
                                                     ("pipeline_lib.domains.derived",))
    assert d.prepare_keys == ("prepare.seed", "data.derived.mnist_odd") and d.stream_keys == ()
    assert d.classes == resolve_domain(params, "mnist").classes and d.artifact == paths.domain_npz("mnist_odd")


@pytest.mark.parametrize("name", ["scenes_game", "scenes_photo"])
def test_embedded_scenes(params, name):
    d = resolve_domain(params, name)
    assert (d.task, d.kind, d.artifact, d.inputs) == ("segmentation", "embedded_scenes", paths.domain_npz(name), ())
    assert d.modules == ("pipeline_lib.domains.scenes",) and d.prepare_keys == ("prepare.seed", "prepare.scenes")
    assert d.stream_keys == () and d.classes == CITYSCAPES_CLASSES and d.palette == CITYSCAPES_PALETTE
    assert d.eval_classes == tuple(range(19)) and d.in_memory


STREAMED_MODULES = ("pipeline_lib.domains.segmentation", "pipeline_lib.domains.manifest",
                    "pipeline_lib.domains.validation")
VALIDATE = "prepare.validate_workers"


@pytest.mark.parametrize("name, prepare_keys", [("cityscapes", ("data.roots.cityscapes",)),
                                                ("gta5", ("data.roots.gta5", "prepare.gta5")),
                                                ("synthia", ("data.roots.synthia", "prepare.synthia"))])
def test_real_scenes_are_streamed_through_an_index(params, tmp_path, name, prepare_keys):
    d = resolve_domain(params, name)
    assert (d.task, d.kind, d.artifact) == ("segmentation", "real_scenes", Path(f"data/domains/{name}.json"))
    assert d.streamed and d.inputs == () and d.modules == STREAMED_MODULES
    assert d.prepare_keys == (*prepare_keys, f"prepare.validate_frames.{name}", VALIDATE)
    assert d.stream_keys == (f"data.roots.{name}",)
    assert d.classes == CITYSCAPES_CLASSES and d.palette == CITYSCAPES_PALETTE
    assert d.eval_classes == (SYNTHIA_EVAL_CLASSES if name == "synthia" else tuple(range(19)))
    assert len(d.eval_classes) == (16 if name == "synthia" else 19)
    assert d.root == (tmp_path / "gta" if name == "gta5" else Path(f"data/raw/{name}"))


def test_folder_domain_has_its_own_classes_and_palette(params, tmp_path):
    d = resolve_domain(params, "mine")
    assert (d.task, d.kind, d.artifact, d.root) == ("segmentation", "folder", Path("data/domains/mine.json"),
                                                    tmp_path / "mine")
    assert d.prepare_keys == ("data.folders.mine", "prepare.validate_frames.mine", VALIDATE) and d.inputs == ()
    assert d.stream_keys == ("data.folders.mine",) and d.modules == STREAMED_MODULES
    assert d.classes == ELEVEN and d.num_classes == 11 and d.eval_classes == tuple(range(11))
    assert d.palette == default_palette(11) and _distinct(d.palette)
    assert d.label_ids == tuple(range(10, 21)) and d.ignore_id == 0
    city = resolve_domain(params, "city_like")  # a folder in Cityscapes' classes gets Cityscapes' colours
    assert city.palette == CITYSCAPES_PALETTE and city.label_ids == tuple(range(19)) and city.ignore_id == 255


@pytest.mark.parametrize("n", [1, 2, 11, 40, 300])
def test_default_palette_is_distinct_for_any_count(n):
    palette = default_palette(n)
    assert len(palette) == n and _distinct(palette) and (0, 0, 0) not in palette  # black = ignored


def test_unknown_domain_is_one_line_naming_the_fix(params):
    with pytest.raises(PipelineError, match=r"unknown domain 'nope' \(known: .*mine.*\); define your own under "
                                            r"data\.folders") as excinfo:
        resolve_domain(params, "nope")
    assert "\n" not in str(excinfo.value)


def _domain(name: str, classes: tuple[str, ...], kind: str = "folder") -> Domain:
    return Domain(name=name, task="segmentation", kind=kind, artifact=Path(f"data/domains/{name}.json"), inputs=(),
                  modules=(), prepare_keys=(), stream_keys=(), classes=classes,
                  eval_classes=tuple(range(len(classes))), palette=default_palette(len(classes)), root=None)


def test_check_compatible_passes_equal_class_lists(params):
    check_compatible(resolve_domain(params, "gta5"), resolve_domain(params, "cityscapes"), "experiments.x")
    check_compatible(resolve_domain(params, "city_like"), resolve_domain(params, "scenes_photo"), "experiments.x")
    check_compatible(_domain("a", ELEVEN), _domain("b", ELEVEN), "experiments.x")


def test_check_compatible_names_both_domains_the_first_difference_and_the_fix(params):
    swapped = ELEVEN[:3] + (ELEVEN[4], ELEVEN[3]) + ELEVEN[5:]
    with pytest.raises(PipelineError) as excinfo:
        check_compatible(_domain("src", ELEVEN), _domain("tgt", swapped), "experiments.mine")
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.startswith("experiments.mine: source 'src' (11 classes) and target 'tgt'")
    assert "train id 3 is 'grass' in 'src' but 'tree' in 'tgt'" in msg
    assert "data.folders.src.classes or data.folders.tgt.classes" in msg and "same order" in msg
    with pytest.raises(PipelineError, match=r"train id 11 is missing in 'mine' but 'ego vehicle' in 'longer'"):
        check_compatible(resolve_domain(params, "mine"), _domain("longer", ELEVEN + ("ego vehicle",)), "x")
    with pytest.raises(PipelineError, match=r"source 'mine' \(11 classes\) and target 'cityscapes' \(19 classes\).*"
                                            r"edit data\.folders\.mine\.classes"):
        check_compatible(resolve_domain(params, "mine"), resolve_domain(params, "cityscapes"), "x")
    with pytest.raises(PipelineError, match="pair domains that share one class list"):
        check_compatible(resolve_domain(params, "mnist"), resolve_domain(params, "cityscapes"), "x")


def test_resolve_is_light_to_import():
    """The DAG builder imports it on every Snakemake parse: no torch, torchvision, PIL or numpy."""
    code = ("import sys, pipeline_lib.domains.resolve, pipeline_lib.domains; "
            "print(sorted(m for m in ('torch', 'torchvision', 'PIL', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_known_domain_resolves_and_agrees_with_the_path_helpers(params):
    for name in params.known_domains():
        d = resolve_domain(params, name)
        assert d.name == name and d.kind in ("embedded_digits", "real_digits", "derived", "shifted", "embedded_scenes",
                                             "real_scenes", "folder", "class_folder")
        assert d.task == params.domain_task(name) and d.artifact.parent == paths.domain_npz(name).parent
        assert len(d.palette) == len(d.classes) and set(d.eval_classes) <= set(range(len(d.classes)))
        assert d.streamed == (d.kind in ("real_scenes", "folder")) == bool(d.stream_keys)


def test_a_shifted_domain_copies_its_base_and_refuses_a_streamed_one(tiny_raw):
    raw = dict(tiny_raw, data={**tiny_raw["data"], "shifted": {**tiny_raw["data"]["shifted"],
        "digits_cubism": {"base": "mnist5k", "shift": "cubism", "strength": 0.5},
        "street_ripple": {"base": "scenes_photo", "shift": "ripple", "strength": 1.0},
        "city_ripple": {"base": "cityscapes", "shift": "ripple", "strength": 1.0}}})
    params = parse_params(raw)
    digits, street = resolve_domain(params, "digits_cubism"), resolve_domain(params, "street_ripple")
    assert (digits.kind, digits.task, digits.inputs) == ("shifted", "classification", ("mnist5k",))
    assert (street.task, street.classes) == ("segmentation", CITYSCAPES_CLASSES) and not street.streamed
    assert digits.modules == ("pipeline_lib.domains.shifts",) and digits.prepare_keys == ("data.shifted.digits_cubism",)
    with pytest.raises(PipelineError, match="data.shifted.city_ripple.base: 'cityscapes' is not an in-memory domain"):
        resolve_domain(params, "city_ripple")
    with pytest.raises(PipelineError, match="strength"):
        parse_params(dict(tiny_raw, data={**tiny_raw["data"], "shifted": {
            **tiny_raw["data"]["shifted"], "x": {"base": "mnist5k", "shift": "ripple", "strength": 1.5}}}))


# ---- a missing dataset folder: the line the Snakefile stops with while it builds the DAG ----------------------

def test_a_missing_dataset_folder_gets_its_readers_own_line(params, tmp_path):
    from pipeline_lib.domains import missing_root

    folder = missing_root(params, "mine")  # a user's folder domain: the layout and its own key
    assert folder.startswith("mine data not usable: root folder") and "images/<stem>" in folder
    assert "data.folders.mine" in folder
    gta = missing_root(params, "gta5")
    assert gta.startswith("GTA5 data not usable") and "data.roots.gta5" in gta
    mnist = missing_root(params, "mnist")
    assert mnist.startswith("MNIST data not found: data.roots.mnist") and "data.download: true" in mnist
    (tmp_path / "mine").mkdir()
    assert missing_root(params, "mine") is None  # there: the reader checks the rest when prepare runs
    assert missing_root(params, "mnist5k") is None  # embedded: no folder


def test_a_digit_set_torchvision_may_fetch_is_never_missing(tiny_raw, tmp_path):
    from pipeline_lib.domains import missing_root

    tiny_raw["data"]["download"] = True
    tiny_raw["data"]["roots"]["mnist"] = str(tmp_path / "nowhere")
    assert missing_root(parse_params(tiny_raw), "mnist") is None
