"""The package's layout: imports go one way through the pipeline's stages (issue 14).

Every `import` of the package's own modules (top level or inside a function) is read with
`ast` and checked against the order below; a stage may import only stages of a lower rank.
Stages of one rank are siblings and may not import each other.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "vidclass"

# Shared utilities: any stage may import them, and they import no stage.
BASE = {"errors", "progress", "parallel", "atomic", "outputs"}
# Module-level exceptions to the folder's rank: the root package is a lazy facade whose
# __version__ anyone may read; synth.labels holds only the class names (it and synth's
# __init__ import nothing), so the metrics and inference can name "background" without
# pulling in the renderer.
BASE_MODULES = {"vidclass.__version__", "vidclass.synth.labels"}

# video <- data <- synth <- models <- train; models + video <- predict <- localize <- detect;
# evaluation needs numpy only; cli and serve sit on top.
# synth may import data (it writes the UCF101 file names that data's splits read), data may
# not import synth. report (plots, tables, html) reads video and serves train and inference.
RANK = {
    "evaluation": 1,
    "video": 1,
    "data": 2,
    "report": 2,
    "synth": 3,
    "models": 4,
    "train": 5,
    "predict": 5,
    "localize": 6,
    "detect": 7,
    "serve": 8,
    "demo": 8,
    "cli": 9,
    "__main__": 10,  # python -m vidclass: runs the CLI
    "": 9,  # vidclass/__init__.py: the public facade (vidclass.Classifier), imported lazily
}

# Imports that still run against the order, each with the change that removes it. The test
# also fails when one of them is gone, so the list only shrinks.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()

# Imports against the order that stay, by design. `Classifier` is the one object a user holds,
# so its `.localize` and `.detect` methods reach the stages above it; they import them inside
# the method, so loading predict never loads localize or detect.
LAZY_UPWARD = {
    ("vidclass.predict.classifier", "vidclass.localize.localize"),
    ("vidclass.predict.classifier", "vidclass.detect.detect"),
}

NO_TORCH = ["evaluation", "video", "synth"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _nodes(tree: ast.AST, in_functions: bool):
    """Every node of `tree`; without `in_functions`, none inside a function body."""
    for child in ast.iter_child_nodes(tree):
        yield child
        if in_functions or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _nodes(child, in_functions)


def imports_of(path: Path, in_functions: bool = True) -> list[tuple[str, int]]:
    """(imported vidclass module or root name, line) for every import in the file, at any
    depth (imports inside functions count: they run too); `in_functions=False` keeps only
    those that run when the module is imported."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in _nodes(ast.parse(path.read_text(), str(path)), in_functions):
        if isinstance(node, ast.Import):
            found += [
                (a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "vidclass"
            ]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "vidclass":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from vidclass.synth import labels` imports vidclass.synth.labels; `from
                # vidclass import __version__` reads a name of the root package
                found.append((sub if is_module(sub) or base == "vidclass" else base, node.lineno))
    return found


def stage(module: str) -> str | None:
    """The stage (folder or top-level module) an import reaches; None for the shared ones.

    `import vidclass` runs only the root's light body (__version__); a name the root resolves
    lazily (`from vidclass import Classifier`) reaches the facade, stage ""."""
    if module in BASE_MODULES or module == "vidclass":
        return None
    first = module.split(".")[1]
    if first in BASE:
        return None
    return first if is_module(f"vidclass.{first}") else ""


def own_stage(path: Path) -> str | None:
    me = module_name(path)
    return "" if me == "vidclass" else stage(me)


def test_every_stage_has_a_rank():
    names = {p.stem for p in ROOT.glob("*.py")} | {
        p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()
    }
    missing = names - {"__init__"} - set(RANK) - BASE
    assert not missing, f"give these a rank in tests/test_layout.py: {sorted(missing)}"


def test_imports_follow_the_pipeline_order():
    wrong, seen = [], set()
    for path in sorted(ROOT.rglob("*.py")):
        me, mine = module_name(path), own_stage(path)
        for target, line in imports_of(path):
            there = stage(target)
            if there is None or there == mine:
                continue
            if mine is not None and RANK[there] < RANK[mine]:
                continue
            if (me, target) in KNOWN_EXCEPTIONS | LAZY_UPWARD:
                seen.add((me, target))
                continue
            rule = (
                "a shared module imports no stage"
                if mine is None
                else f"{mine} (rank {RANK[mine]}) may not import {there or 'vidclass'} "
                f"(rank {RANK[there]})"
            )
            wrong.append(f"{path.relative_to(ROOT)}:{line} {me} -> {target}: {rule}")
    assert not wrong, "imports against the pipeline order:\n" + "\n".join(wrong)
    gone = (KNOWN_EXCEPTIONS | LAZY_UPWARD) - seen
    assert not gone, f"fixed: remove from KNOWN_EXCEPTIONS or LAZY_UPWARD: {sorted(gone)}"


def test_the_upward_imports_stay_inside_functions():
    """A LAZY_UPWARD import at module level would load the stage above on every import."""
    for me, target in sorted(LAZY_UPWARD):
        path = (ROOT.parent / Path(*me.split("."))).with_suffix(".py")
        at_top = [t for t, _ in imports_of(path, in_functions=False)]
        assert target not in at_top, f"{me} imports {target} at module level"
        assert target in [t for t, _ in imports_of(path)], f"{me} no longer imports {target}"


def test_names_only_modules_import_nothing_of_the_package():
    for rel in ("synth/labels.py", "synth/__init__.py", "evaluation/__init__.py"):
        assert imports_of(ROOT / rel) == [], rel


def test_evaluation_needs_numpy_only():
    allowed = {"numpy", "scipy", "vidclass", "__future__"}
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((ROOT / "evaluation").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in stdlib, f"{path.relative_to(ROOT)} imports {name}"


def test_the_lower_stages_load_without_torch():
    """Importing every module of evaluation, video and synth leaves torch unloaded (the decode
    and render workers start light), checked in a fresh interpreter."""
    modules = [module_name(p) for s in NO_TORCH for p in sorted((ROOT / s).rglob("*.py"))]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT.parent)},
    )
    assert json.loads(out.stdout) == []


MAX_FILE_LINES = 500
MAX_BODY_LINES = 80


def test_no_module_is_longer_than_a_newcomer_can_read():
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(ROOT.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"split these modules (over {MAX_FILE_LINES} lines): {long}"


def test_no_function_body_does_five_jobs():
    """A function's body, from its first statement to its end, stays under MAX_BODY_LINES.

    The body, not the whole definition: a typer command's signature is its list of options,
    one declaration each, and splitting it would only hide them. A nested function counts
    within its parent too."""
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.end_lineno - node.body[0].lineno + 1
                if body > MAX_BODY_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({body})")
    assert not long, f"split these functions (over {MAX_BODY_LINES} lines):\n" + "\n".join(long)
