"""How echolib is built: its layers, the home of each concept, and the imports between packages, read from the source.

The rule of the design is that each layer imports only the layers below it,
and that each concept (the run folder, the metric registry, the evaluation
protocol, ...) has one home that everything else asks. Both are written down
here once: ``tests/test_layout.py`` checks the source against them, and the
book's appendix *How echolib is built* draws them from the same lists, so the
picture a reader sees is the one the tests enforce.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


@dataclass(frozen=True)
class Layer:
    """A row of the design: packages that may import any layer below theirs, and what they are for."""

    name: str
    packages: tuple[str, ...]
    role: str
    #: whether packages of this layer may import each other (entry points and plumbing do; the others are peers)
    peers_import: bool = False


#: top to bottom; a package is a folder of ``echolib`` or a module directly under it
LAYERS: tuple[Layer, ...] = (
    Layer("entry points", ("__main__", "cli", "commands", "pipeline"),
          "the command line, papermill runs and sweeps, the book build", peers_import=True),
    Layer("reports", ("report",), "figures and tables, read from run folders and kept records"),
    Layer("training", ("train", "turing"), "the trainer and its run folders; the visual Turing test"),
    Layer("models and metrics", ("models", "metrics"), "networks and their training steps; measurements"),
    Layer("data", ("augment", "data"), "differentiable augmentation; frames, manifests and the phantom"),
    Layer("plumbing", ("echolib", "config", "dependencies", "devices", "errors", "images", "io", "layout", "paths",
                       "progress", "resampling"),
          "typed configs, files, images, errors, devices, progress bars", peers_import=True),
)  # fmt: skip


@dataclass(frozen=True)
class Home:
    """Where one concept lives: the module and the object that own it; everything else asks them."""

    concept: str
    module: str
    owner: str


HOMES: tuple[Home, ...] = (
    Home("manifest columns and their meaning", "echolib.data.manifest", "FrameRecord"),
    Home("writing a frame folder atomically (PNGs, worker pool, staged folder)", "echolib.data.writer", "staged_folder"),
    Home("frames with each frame's manifest fields (video, phase, EF, split)", "echolib.data.frames", "FrameDataset"),
    Home("decoding an EchoNet video", "echolib.data.echonet", "read_video"),
    Home("scoring the study's ED/ES heuristic against the experts' frames", "echolib.data.echonet", "score_picks"),
    Home("a run folder's files, meta, checkpoints and held-out videos", "echolib.train.run_folder", "RunFolder"),
    Home("a run's configuration (the model and train blocks)", "echolib.train.run_config", "RunConfig"),
    Home("which videos a run never trains on", "echolib.train.splits", "split_data"),
    Home("what a metric is: direction, may it rank, default", "echolib.metrics.registry", "REGISTRY"),
    Home("how a table's rows are scored: real set, n, extractor and its sha256", "echolib.metrics.protocol",
         "Protocol"),
    Home("intervals of a metric over half-samples of videos", "echolib.metrics.intervals", "subsample_interval"),
    Home("what a model needs from outside, and the rules of a training step", "echolib.models.base",
         "GenerativeModel"),
    Home("the condition maps an image-conditioned model translates", "echolib.train.conditions", "condition_maps"),
    Home("a real batch as a training step draws it (trainer, tests, step benchmarks)", "echolib.train.real_batches",
         "RealDraws"),
    Home("the architectures and their configuration files", "echolib.models.registry", "ARCHITECTURES"),
    Home("uint8 frames on disk, floats in [-1, 1] inside models", "echolib.images", "to_float"),
    Home("paths as the book prints them", "echolib.paths", "shown_path"),
    Home("records measured on other machines, kept without images or paths", "echolib.report.measured", "keep_run"),
    Home("every dependency and what it is used for", "echolib.dependencies", "DEPENDENCIES"),
    Home("the layers and these homes", "echolib.layout", "LAYERS"),
)  # fmt: skip


@dataclass(frozen=True)
class Import:
    """One import of an echolib module: who imports what, on which line, and whether at module level."""

    importer: str
    module: str
    line: int
    top_level: bool


def module_name(path: Path) -> str:
    """``echolib/models/vqgan.py`` -> ``echolib.models.vqgan``; a package's ``__init__`` is the package."""
    parts = list(path.resolve().relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, importer: str, is_package: bool = False) -> list[Import]:
    """The echolib modules ``source`` imports; ``from a import b`` counts ``a.b`` too when it is a module.

    An import inside a function (or lambda) runs when the function is called,
    not when the module is imported: it counts for what a module may import,
    not for cycles. ``if TYPE_CHECKING:`` blocks never run and are skipped.
    """
    package = importer if is_package else importer.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(ast.Module(body=child.orelse, type_ignores=[]), in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            line = getattr(child, "lineno", 0)
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in child.names if _is_module(f"{base}.{a.name}")]
            for name in names:
                if name == "echolib" or name.startswith("echolib."):
                    found.append(Import(importer, name, line, not inner))
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def all_imports() -> Iterator[Import]:
    """Every import of an echolib module in echolib's source, in file order."""
    for path in source_files():
        yield from imports_of(path.read_text(), module_name(path), path.name == "__init__.py")


def package_of(module: str) -> str:
    """``echolib.models.vqgan`` -> ``models``; a plumbing module (``echolib.io``) is a package of its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(package: str) -> int:
    """The row of ``package`` in :data:`LAYERS`, 0 at the top."""
    for i, layer in enumerate(LAYERS):
        if package in layer.packages:
            return i
    raise KeyError(f"echolib.{package} belongs to no layer of echolib.layout.LAYERS")


def may_import(importer: str, imported: str) -> bool:
    """Whether package ``importer`` may import package ``imported``: a layer below, or a peer where peers may."""
    a, b = layer_of(importer), layer_of(imported)
    return b > a or (a == b and (importer == imported or LAYERS[a].peers_import))


def package_edges(imports: Iterable[Import] | None = None,
                  top_level_only: bool = True) -> dict[tuple[str, str], int]:
    """``(importer package, imported package) -> number of imports`` between different packages.

    ``imports`` defaults to :func:`all_imports`; a caller that needs several
    views of the graph reads the source once and passes the list.
    """
    edges: dict[tuple[str, str], int] = {}
    for imp in all_imports() if imports is None else imports:
        if top_level_only and not imp.top_level:
            continue
        a, b = package_of(imp.importer), package_of(imp.module)
        if a != b:
            edges[(a, b)] = edges.get((a, b), 0) + 1
    return edges


@dataclass(frozen=True)
class PackageFacts:
    """What the appendix's table says of one package: what it owns (its docstring's first line) and its size."""

    name: str
    layer: str
    owns: str
    modules: int
    lines: int


def package_facts() -> list[PackageFacts]:
    """One row per package of :data:`LAYERS`, top to bottom, read from the source."""
    rows = []
    for layer in LAYERS:
        for name in layer.packages:
            if name == "echolib":
                files = [PACKAGE / "__init__.py"]
            elif (PACKAGE / name).is_dir():
                files = sorted((PACKAGE / name).rglob("*.py"))
            else:
                files = [PACKAGE / f"{name}.py"]
            head = files[0] if name == "echolib" or not (PACKAGE / name).is_dir() else PACKAGE / name / "__init__.py"
            doc = ast.get_docstring(ast.parse(head.read_text())) or ""
            owns = doc.strip().splitlines()[0] if doc.strip() else ""
            lines = sum(len(f.read_text().splitlines()) for f in files)
            rows.append(PackageFacts(name, layer.name, owns, len(files), lines))
    return rows


def check_homes() -> list[str]:
    """The homes of :data:`HOMES` whose module or owner does not exist (empty when every home is there)."""
    missing = []
    for home in HOMES:
        try:
            module = importlib.import_module(home.module)
        except ImportError as exc:
            missing.append(f"{home.module}: {exc}")
            continue
        if not hasattr(module, home.owner):
            missing.append(f"{home.module} has no {home.owner}")
    return missing
