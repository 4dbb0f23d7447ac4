"""House rules that keep the layers apart and the user's files harmless."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "vae").rglob("*.py"))
PAGES = sorted((ROOT / "app_pages").glob("*.py"))
GLUE = sorted((ROOT / "ui").rglob("*.py"))
APP = [ROOT / "app.py", *GLUE, *PAGES]
SOURCES = LIBRARY + APP + sorted((ROOT / "bench").glob("*.py")) + sorted((ROOT / "docs").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_never_imports_the_ui():
    offenders = {str(p.relative_to(ROOT)): imported_modules(p) & {"streamlit", "plotly"} for p in LIBRARY}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_library_does_not_import_the_app():
    offenders = {str(p.relative_to(ROOT)): imported_modules(p) & {"ui", "app_pages", "app"} for p in LIBRARY}
    assert not {k: v for k, v in offenders.items() if v}


def test_imports_flow_one_way_pages_then_ui_then_vae():
    """Pages never import each other (nor app.py); ui/ never imports a page or the frame."""
    assert not {
        p.name: imported_modules(p) & {"app_pages", "app"} for p in PAGES if imported_modules(p) & {"app_pages", "app"}
    }
    assert not {
        p.name: imported_modules(p) & {"app_pages", "app"} for p in GLUE if imported_modules(p) & {"app_pages", "app"}
    }


def test_no_loose_module_at_the_top():
    assert sorted(p.name for p in ROOT.glob("*.py")) == ["app.py"]


def run_file_names() -> set[str]:
    from vae import run as rf

    return {rf.CONFIG_FILE, rf.MODEL_FILE, rf.STATE_FILE, rf.METRICS_FILE, rf.STATUS_FILE, rf.CONTROL_FILE,
            rf.LOG_FILE, rf.EVALUATION_FILE, rf.PROJECTIONS_DIR, rf.HISTORY_DIR, *rf.PICTURES.values()}  # fmt: skip


def spelled_strings(path: Path) -> set[str]:
    """Every string literal of the code (docstrings and comments are prose: left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def names_a_run_file(text: str) -> bool:
    """``text`` holds a run file's name: a file name anywhere, the projections folder as a path."""
    files = {n for n in run_file_names() if "." in n}
    folders = run_file_names() - files
    return any(n in text for n in files) or any(text == n or f"{n}/" in text or f"/{n}" in text for n in folders)


def test_only_the_run_module_names_a_run_file():
    owner = ROOT / "vae" / "run.py"
    # vae/places.py names the config (what makes a folder a run) and the maps' folder, read before torch loads
    # (app.py's first lines; the map worker, which never loads torch)
    allowed = {ROOT / "vae" / "places.py": {"config.json", "projections"}}
    offenders = {
        str(p.relative_to(ROOT)): sorted(s for s in spelled_strings(p) if names_a_run_file(s))
        for p in SOURCES
        if p != owner
    }
    offenders = {k: [s for s in v if s not in allowed.get(ROOT / k, set())] for k, v in offenders.items()}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_run_file_check_sees_a_spelled_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""Mentions metrics.jsonl in prose only."""\nPATH = run_dir / "metrics.jsonl"\n')
    assert {s for s in spelled_strings(bad) if names_a_run_file(s)} == {"metrics.jsonl"}
    assert not names_a_run_file("scaling: projections of") and names_a_run_file("run/projections/x.npz")


def test_no_module_is_much_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in LIBRARY + APP if (n := len(p.read_text().splitlines())) > 420}
    assert not long


UNSAFE = [
    (re.compile(r"\bimport pickle\b|\bfrom pickle\b|\bpickle\.load"), "pickle"),
    (re.compile(r"allow_pickle\s*=\s*True"), "allow_pickle=True"),
    (re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"), "torch.load without weights_only=True"),
    (re.compile(r"(?<![\w.])eval\(|(?<![\w.])exec\("), "eval/exec"),
]


def test_no_unsafe_loading_on_any_path_a_users_file_can_reach():
    found = []
    for path in LIBRARY + [p for p in APP if p.exists()]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in UNSAFE:
                if pattern.search(code):
                    found.append(f"{path.relative_to(ROOT)}:{i}: {what}")
    assert not found, found


def test_the_scan_catches_what_it_looks_for():
    bad = ["import pickle", "np.load(f, allow_pickle=True)", "torch.load(f)", "eval(s)"]
    for line in bad:
        assert any(p.search(line) for p, _ in UNSAFE), line
    assert not any(p.search("torch.load(f, weights_only=True)") for p, _ in UNSAFE)
    assert not any(p.search("model.eval()") for p, _ in UNSAFE)
