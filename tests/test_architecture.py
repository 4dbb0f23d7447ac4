"""House rules that keep the layers apart and the user's files harmless."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "vae").glob("*.py"))
APP = [ROOT / "app.py", ROOT / "ui.py", *sorted((ROOT / "app_pages").glob("*.py"))]


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
    offenders = {p.name: imported_modules(p) & {"streamlit", "plotly"} for p in LIBRARY}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_library_does_not_import_the_app():
    offenders = {p.name: imported_modules(p) & {"ui", "app_pages", "app"} for p in LIBRARY}
    assert not {k: v for k, v in offenders.items() if v}


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
