"""The package's shape: the library at the bottom, then the replay, then the report and deploy, then
the command line; imports point down only, nothing imports in a circle, and importing has no side
effects."""

import ast
import json
import os
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kd_keras"
# A layer may import its own layer and the layers below it (a lower number).
LAYERS = {"library": 0, "replay": 1, "report": 2, "deploy": 2, "cli": 3}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS and parts[1] != "library" else "library"


def _imports():
    """``{module: {kd_keras modules it imports}}``, module-level and inside functions alike."""
    found = {}
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("kd_keras")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kd_keras"):
                for alias in node.names:  # "from kd_keras.replay import layout" imports a module
                    candidate = f"{node.module}.{alias.name}"
                    targets.add(candidate if candidate in modules else node.module)
        found[module] = {t for t in targets if t != module}
    return found


def test_imports_point_down_only():
    wrong = []
    for module, targets in _imports().items():
        for target in targets:
            if target == "kd_keras":
                continue  # the package's version string
            mine, theirs = _layer(module), _layer(target)
            if LAYERS[theirs] > LAYERS[mine] or (LAYERS[theirs] == LAYERS[mine] and theirs != mine):
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_library_imports_nothing_above_it():
    above = {m: sorted(t for t in ts if _layer(t) != "library") for m, ts in _imports().items()
             if _layer(m) == "library"}
    assert not {m: t for m, t in above.items() if t}


def test_no_import_cycle():
    graph = _imports()
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target == "kd_keras" or target not in graph:
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def _fresh_python(code):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          cwd=str(PACKAGE.parent))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_package_changes_nothing_and_loads_no_keras():
    seen = _fresh_python(
        "import json, os, sys; hooks = len(sys.meta_path); import kd_keras, kd_keras.cli; "
        "print(json.dumps({'keras': 'keras' in sys.modules, 'hooks': len(sys.meta_path) - hooks, "
        "'env': [k for k in ('TF_ENABLE_ONEDNN_OPTS', 'TF_CPP_MIN_LOG_LEVEL') if k in os.environ]}))")
    assert seen == {"keras": False, "hooks": 0, "env": []}


def test_the_report_reads_the_archive_without_keras_or_pyplot(tmp_path):
    seen = _fresh_python(
        "import json, sys; from kd_keras import report; "
        f"report.write_report('results/runs', {str(tmp_path / 'r')!r}, {str(tmp_path / 'f')!r}, log=lambda *_: None); "
        "import matplotlib; "
        "print(json.dumps({'keras': 'keras' in sys.modules, 'tensorflow': 'tensorflow' in sys.modules, "
        "'pyplot': 'matplotlib.pyplot' in sys.modules}))")
    assert seen == {"keras": False, "tensorflow": False, "pyplot": False}
    assert list((tmp_path / "f").rglob("*.png"))  # it drew the figures all the same


def test_the_layouts_student_modes_are_the_distillers():
    from kd_keras.distill import MODES
    from kd_keras.replay import layout

    assert layout.MODES == MODES
