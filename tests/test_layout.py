"""The layers of ``echolib.layout`` hold in the source, and every concept's home is where the table says."""

from __future__ import annotations

import pytest

from echolib import layout


def test_every_package_and_top_level_module_sits_in_one_layer():
    names = {layout.package_of(layout.module_name(p)) for p in layout.source_files()}
    placed = [p for layer in layout.LAYERS for p in layer.packages]
    assert len(placed) == len(set(placed)), "a package is listed in two layers"
    assert names == set(placed), f"not placed: {sorted(names - set(placed))}; listed but absent: {sorted(set(placed) - names)}"


def test_the_rule_reads_top_down():
    assert layout.may_import("report", "models") and layout.may_import("train", "data")
    assert not layout.may_import("models", "report") and not layout.may_import("data", "train")
    assert not layout.may_import("models", "metrics") and not layout.may_import("train", "turing")  # peers
    assert layout.may_import("commands", "pipeline") and layout.may_import("images", "io")  # peers that may
    with pytest.raises(KeyError, match="no layer"):
        layout.layer_of("nowhere")


def test_each_package_imports_only_the_layers_below_it():
    """Imports inside functions count too: a lazy import of a higher layer is still the wrong direction."""
    wrong = [f"{imp.importer}:{imp.line} imports {imp.module}" for imp in layout.all_imports()
             if not layout.may_import(layout.package_of(imp.importer), layout.package_of(imp.module))]
    assert not wrong, "imports against the layers of echolib.layout:\n" + "\n".join(wrong)


def test_every_home_exists():
    assert layout.check_homes() == []
    assert len({h.concept for h in layout.HOMES}) == len(layout.HOMES)


def test_package_facts_read_the_source():
    facts = {f.name: f for f in layout.package_facts()}
    assert list(facts) == [p for layer in layout.LAYERS for p in layer.packages]
    assert facts["models"].modules > 5 and facts["models"].lines > 1000 and facts["models"].owns
    assert facts["io"].modules == 1 and facts["io"].layer == "plumbing"


def test_the_appendix_draws_every_import_between_drawn_packages_and_speaks_markdown():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import FancyArrowPatch

    from echolib.report.layout_figure import as_markdown, layer_diagram, model_rules

    edges = {("report", "models"): 3, ("train", "data"): 1, ("report", "io"): 5}  # io is plumbing: no arrow
    lazy = {**edges, ("commands", "report"): 2}
    fig = layer_diagram(edges, lazy)
    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 3
    assert as_markdown("uses :meth:`~a.B.c` and ``x``") == "uses `a.B.c` and `x`"
    assert "ctx.next_real()" in model_rules() and ":meth:" not in model_rules()
    from echolib.report.layout_figure import package_table

    owns = " ".join(package_table()["what it owns"])  # an HTML table shows no reStructuredText
    assert "python -m echolib" in owns and "`" not in owns and ":mod:" not in owns
