"""Paths as the book shows them: no absolute path of the machine that built it."""

from __future__ import annotations

from echolib.paths import PROJECT, shown_path


def test_paths_are_shown_relative_to_the_runs_folder_the_project_or_home(tmp_path, monkeypatch):
    runs = PROJECT / "runs"
    assert shown_path(runs / "wgan" / "smoke", base=runs) == "wgan/smoke"
    assert shown_path(runs / "wgan" / "smoke") == "runs/wgan/smoke"
    assert shown_path(PROJECT.parent / "shared" / "data" / "frames") == "../shared/data/frames"
    monkeypatch.chdir(PROJECT / "notebooks")
    assert shown_path("../runs") == "runs"  # a relative path is relative to where the kernel runs
    beside_the_project = PROJECT.parent.resolve()
    home = tmp_path.resolve() / "home"
    monkeypatch.setenv("HOME", str(home))
    if not home.is_relative_to(beside_the_project):  # a clone in /tmp shows temporary folders relative to it
        assert shown_path(home / ".cache" / "torch" / "w.pth") == "~/.cache/torch/w.pth"
        assert shown_path(tmp_path / "turing-demo-x1" / "answers") == "…/turing-demo-x1/answers"


def test_a_linked_folder_beside_the_project_reads_as_where_it_is_linked(tmp_path):
    """A ``../shared`` that is a symbolic link to elsewhere still reads as the project's layout names it."""
    link = PROJECT / "_build" / "linked-shared"
    link.parent.mkdir(exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        assert shown_path(link / "data" / "frames") == "_build/linked-shared/data/frames"
    finally:
        link.unlink()
