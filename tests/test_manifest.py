"""The content manifest of a raw dataset folder (pipeline_lib/domains/manifest.py): its text changes exactly when a
file's bytes, a path or the set of files do; a refresh hashes only what size, mtime and inode do not vouch for."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pipeline_lib.domains import manifest
from pipeline_lib.domains.manifest import cache_path, manifest_path, refresh, scan

HOUR_NS = 3600 * 10**9


def _age(root: Path) -> None:
    """Date every file an hour back (a dataset on disk is older than the scans; see manifest.RACY_NS)."""
    past = time.time_ns() - HOUR_NS
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(past, past))


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, Path]:
    """(workspace, dataset folder): 3 images + 3 labels, dated an hour back, and a first refresh done."""
    root = tmp_path / "raw/mine"
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
        for i in range(3):
            (root / sub / f"f{i}.png").write_bytes(f"{sub} {i}".encode() * 10)
    _age(root)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    first = refresh("mine", root, workspace)
    assert first.hashed == 6
    return workspace, root


def _text(workspace: Path) -> str:
    return (workspace / manifest_path("mine")).read_text()


def test_the_manifest_lists_every_file_with_size_and_hash_and_no_times(work):
    workspace, root = work
    written = json.loads(_text(workspace))
    assert written["files"] == 6 and written["exists"] is True and written["root"] == str(root)
    assert written["entries"]["images/f1.png"] == [len(b"images 1" * 10), manifest.hash_file(root / "images/f1.png")]
    assert written["digest"] == scan(root, workspace / cache_path("mine")).digest
    assert "mtime" not in _text(workspace) and str(root.stat().st_mtime_ns) not in _text(workspace)


def test_a_refresh_with_nothing_changed_hashes_nothing_and_writes_nothing(work):
    workspace, root = work
    before, mtime = _text(workspace), (workspace / manifest_path("mine")).stat().st_mtime_ns
    again = refresh("mine", root, workspace)
    assert again.hashed == 0
    assert _text(workspace) == before and (workspace / manifest_path("mine")).stat().st_mtime_ns == mtime


def test_touch_rehashes_the_file_but_leaves_the_manifest_alone(work):
    workspace, root = work
    before, mtime = _text(workspace), (workspace / manifest_path("mine")).stat().st_mtime_ns
    os.utime(root / "images/f0.png")  # a new mtime, the same bytes
    again = refresh("mine", root, workspace)
    assert again.hashed == 1
    assert _text(workspace) == before and (workspace / manifest_path("mine")).stat().st_mtime_ns == mtime


@pytest.mark.parametrize("change", ["edit in place", "add a frame", "remove a frame", "rename a frame"])
def test_a_changed_frame_changes_the_manifest(work, change):
    workspace, root = work
    before = _text(workspace)
    frame = root / "images/f1.png"
    if change == "edit in place":  # the same size: only the bytes tell
        frame.write_bytes(frame.read_bytes().replace(b"images", b"IMAGES"))
    elif change == "add a frame":
        (root / "images/f3.png").write_bytes(b"new")
    elif change == "remove a frame":
        frame.unlink()
    else:
        frame.rename(root / "images/g1.png")
    again = refresh("mine", root, workspace)
    assert _text(workspace) != before
    assert again.hashed <= 1  # only the new or changed file is read
    assert again == scan(root, workspace / "fresh-cache.json")  # what a cold scan finds


def test_a_copy_over_the_frame_that_keeps_size_and_mtime_is_seen(work):
    """rsync -t / cp -p replace a file with one of the same size and mtime: a new inode gives it away."""
    workspace, root = work
    before = _text(workspace)
    frame = root / "images/f2.png"
    st = frame.stat()
    replacement = root / "images/.f2.tmp"
    replacement.write_bytes(frame.read_bytes().replace(b"images", b"IMAGES"))
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, frame)
    assert (frame.stat().st_size, frame.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    refresh("mine", root, workspace)
    assert _text(workspace) != before


def test_an_edit_in_the_same_clock_tick_as_the_scan_is_not_trusted_to_the_cache(tmp_path):
    """git's racy case: a file written just before a scan may be rewritten with the same size and mtime, so the
    next scan hashes it again instead of trusting the cache."""
    root = tmp_path / "raw"
    root.mkdir()
    frame = root / "a.png"
    frame.write_bytes(b"0123456789")
    first = scan(root, tmp_path / "cache.json")
    st = frame.stat()
    with open(frame, "r+b") as f:  # same inode, same size, mtime put back
        f.write(b"abcdefghij")
    os.utime(frame, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = scan(root, tmp_path / "cache.json")
    assert second.hashed == 1 and second.digest != first.digest


def test_a_missing_root_gets_a_manifest_that_changes_when_the_data_arrives(tmp_path):
    root = tmp_path / "raw/later"
    missing = refresh("later", root, tmp_path)
    assert not missing.exists and json.loads((tmp_path / manifest_path("later")).read_text())["exists"] is False
    before = (tmp_path / manifest_path("later")).read_text()
    root.mkdir(parents=True)
    (root / "x.png").write_bytes(b"x")
    assert refresh("later", root, tmp_path).exists
    assert (tmp_path / manifest_path("later")).read_text() != before


def test_a_relative_root_is_read_from_the_workspace(work, tmp_path):
    workspace, root = work
    rel = os.path.relpath(root, workspace)
    assert refresh("mine", rel, workspace).files == scan(root, tmp_path / "other-cache.json").files


def test_ensure_creates_an_unscanned_manifest_once_without_reading_the_folder(work, tmp_path):
    workspace, root = work
    before = _text(workspace)
    manifest.ensure_manifest("mine", root, workspace)  # already there: left alone
    assert _text(workspace) == before
    manifest.ensure_manifest("other", root, workspace)
    assert json.loads((workspace / manifest_path("other")).read_text()) == {"root": str(root), "scanned": False}
    assert not (workspace / cache_path("other")).exists()
    assert refresh("other", root, workspace).hashed == 6
    assert (workspace / manifest_path("other")).read_text() == before  # the same folder, the same content


def test_linked_folders_are_followed_once(tmp_path):
    """A dataset assembled from links (images/ pointing elsewhere) is read through them; a link back up the
    tree is not followed round in circles."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.png").write_bytes(b"a")
    root = tmp_path / "raw"
    root.mkdir()
    (root / "images").symlink_to(elsewhere)
    (root / "loop").symlink_to(root)
    (root / "labels.txt").write_bytes(b"l")
    found = scan(root, tmp_path / "cache.json")
    assert set(found.files) == {"images/a.png", "labels.txt"}
