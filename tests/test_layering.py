"""The dependency rules of DESIGN.md ("Dependencies point down"), checked on the source text.

* core (``hil/`` outside ``hil/twin`` and ``hil/sim``) never imports the physics package
  ``hil.twin``: the simulation backend (``hil.sim``) is the only way in;
* drivers (``instruments/``) never import ``hil.sim`` or ``hil.twin``: a driver cannot know
  whether it talks to a twin or a real box;
* an experiment reaches instruments through roles, so nothing in ``experiments/`` imports
  ``instruments``; and no experiment module takes a constant (or anything but the step itself)
  from another step's module.

Imports are read with :mod:`ast`, so one inside a function or under ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports(source: str) -> list[tuple[str, tuple[str, ...], int]]:
    """Every import of ``source``: (module, names imported from it, line)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = tuple(alias.name for alias in node.names)
            found.append((node.module, names, node.lineno))
            # ``from hil import twin`` imports the module hil.twin
            found += [(f"{node.module}.{n}", (), node.lineno) for n in names]
    return found


def reaches(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(folder: Path, forbidden: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel.startswith(s) for s in skip):
            continue
        for module, _, line in imports(path.read_text(encoding="utf-8")):
            out += [f"{rel}:{line} imports {module}" for p in forbidden if reaches(module, p)]
    return out


def test_the_check_sees_every_form_of_import() -> None:
    source = ("import hil.twin.lab\n"
              "from hil.twin.params import TwinParams\n"
              "from hil import twin\n"
              "def f():\n    from hil.twin import TwinLab\n"
              "import hil.twinkle\n")
    lines = {line for module, _, line in imports(source) if reaches(module, "hil.twin")}
    assert sorted(lines) == [1, 2, 3, 5]


def test_core_does_not_import_the_twin() -> None:
    assert violations(ROOT / "hil", ("hil.twin",), skip=("hil/twin/", "hil/sim/")) == []


def test_the_framework_does_not_import_experiments() -> None:
    assert violations(ROOT / "hil", ("experiments",)) == []


def test_drivers_do_not_know_the_simulation() -> None:
    assert violations(ROOT / "instruments", ("hil.twin", "hil.sim")) == []


def test_experiments_do_not_import_drivers() -> None:
    assert violations(ROOT / "experiments", ("instruments",)) == []


def step_modules() -> dict[str, str]:
    """Module of each registered step -> the step function's name."""
    found = {}
    for ep in entry_points(group="qlink_hil.experiments"):
        module, _, attr = ep.value.partition(":")
        found[module] = attr
    if not found:
        pytest.skip("qlink-hil is not installed (no experiment entry points)")
    return found


def test_experiments_take_only_steps_from_other_steps_modules() -> None:
    steps = step_modules()
    wrong = []
    for path in sorted((ROOT / "experiments").rglob("*.py")):
        rel = path.relative_to(ROOT)
        own = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        for module, names, line in imports(path.read_text(encoding="utf-8")):
            if module in steps and module != own:
                extra = [n for n in names if n != steps[module]] or (["*"] if not names else [])
                wrong += [f"{rel}:{line} takes {n} from {module}" for n in extra]
    assert wrong == []
