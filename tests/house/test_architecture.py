"""House rules that keep the layers apart and the user's files harmless."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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


def vae_imports(path: Path) -> set[str]:
    """The vae modules ``path`` imports (relative imports resolved; ``from pkg import module`` names the module)."""
    mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    pkg = mod.removesuffix(".__init__") if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + [node.module or ""]).strip(".")
            target = base if node.level else (node.module or "")
            for a in node.names:
                sub = f"{target}.{a.name}"
                is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").exists()
                out.add(sub if is_module else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m == "vae" or m.startswith("vae.")}


def room(module: str) -> str:
    """vae.<room>.x → the room; vae.train, vae.__main__ their own; the other top-level modules: "core"."""
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / "vae" / parts[1]).is_dir():
        return parts[1]
    return {"train": "train", "__main__": "main"}.get(parts[1] if len(parts) > 1 else "", "core")


# room: the rooms it may import besides itself (the library's floors, bottom to top)
ROOMS = {
    "core": set(),  # config, models, objectives, progress, images, distributed
    "data": {"core"},
    "runs": {"core", "data"},
    "projection": {"core"},
    "web": {"core"},
    "analysis": {"core", "data", "runs", "projection"},
    "train": {"core", "data", "runs", "analysis"},
    "cli": {"core", "data", "runs", "projection", "web", "analysis", "train"},
    "main": {"cli"},
}
LIGHT = {"vae.runs.fileio", "vae.runs.guard", "vae.runs.places"}  # atomic writes, untrusted reads, where runs live
EXCEPTIONS = {("vae.runs.standby", "vae.train")}  # the standby process preloads the trainer before a run exists


def test_the_librarys_rooms_import_only_the_floors_below_them():
    offenders = []
    for path in LIBRARY:
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for target in vae_imports(path):
            a, b = room(mod), room(target)
            if a != b and b not in ROOMS[a] and target not in LIGHT and (mod, target) not in EXCEPTIONS:
                offenders.append(f"{mod} ({a}) imports {target} ({b})")
    assert not offenders, offenders
    assert {room(".".join(p.relative_to(ROOT).with_suffix("").parts)) for p in LIBRARY} == set(ROOMS)


def test_the_room_check_sees_an_import_from_a_floor_above(tmp_path, monkeypatch):
    assert room("vae.runs.jobs") == "runs" and room("vae.models") == "core" and room("vae.train") == "train"
    assert "analysis" not in ROOMS["runs"]  # so vae/runs importing vae.analysis would be listed


def test_each_room_says_in_its_first_line_what_lives_there():
    for init in sorted((ROOT / "vae").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and doc.splitlines()[0].endswith("."), init


def test_the_frame_imports_only_the_glue_and_what_runs_before_torch_loads():
    """app.py: streamlit and ui/; from the library only the two light modules its first lines use."""
    app = ROOT / "app.py"
    assert imported_modules(app) <= {"os", "streamlit", "ui", "vae"}
    assert vae_imports(app) == {"vae.runs.places", "vae.runs.standby"}


def test_no_loose_module_at_the_top():
    assert sorted(p.name for p in ROOT.glob("*.py")) == ["app.py"]


def run_file_names() -> set[str]:
    from vae.runs import folder as rf

    return {rf.CONFIG_FILE, rf.MODEL_FILE, rf.STATE_FILE, rf.METRICS_FILE, rf.STATUS_FILE, rf.CONTROL_FILE,
            rf.LOG_FILE, rf.EVALUATION_FILE, rf.NOTES_FILE, rf.PROJECTIONS_DIR, rf.HISTORY_DIR,
            *rf.PICTURES.values()}  # fmt: skip


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
    owner = ROOT / "vae" / "runs" / "folder.py"
    # vae/runs/places.py names the config (what makes a folder a run) and the maps' folder, read before torch loads
    # (app.py's first lines; the map worker, which never loads torch)
    allowed = {ROOT / "vae" / "runs" / "places.py": {"config.json", "projections"}}
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


def download_buttons_that_rerun(path: Path) -> list[int]:
    """The lines of ``path``'s download buttons that leave ``on_click`` at its default: a run of the page per click."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "download_button"
        and not any(k.arg == "on_click" and getattr(k.value, "value", None) == "ignore" for k in node.keywords)
    ]  # fmt: skip


def test_no_download_button_runs_the_page_again():
    """A download needs no run of the page, and a run can lose it: Streamlit 1.67 sends a file made on the click
    (``data`` a callable) in a message that a full run, starting before the message went out, drops from its queue;
    the button then spins for ever (Explore's film GIF: 1 click in 4 on a 2-core Xeon, run alone)."""
    found = {str(p.relative_to(ROOT)): lines for p in APP if (lines := download_buttons_that_rerun(p))}
    assert not found


def test_the_download_check_sees_a_button_left_to_run_the_page(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('st.download_button("a", b"x")\nc2.download_button("b", f, on_click="ignore")\nst.button("c")\n')
    assert download_buttons_that_rerun(bad) == [1]
