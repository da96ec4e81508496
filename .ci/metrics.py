"""Structure metrics of the exported package (issue 12's before/after note), printed as a Markdown table.

    python .ci/metrics.py                 # the working tree
    python .ci/metrics.py --rev HEAD      # a git revision (read with `git archive`, nothing checked out)
    python .ci/metrics.py --compare HEAD  # that revision beside the working tree, with totals

Per module of fmea/ and kernels/ (fmea.experiments.* included; _modidx and __init__ left out):
public names (`__all__`), lines, longest exported cell (lines of one `# %%` cell of the exported file),
top-level definitions per exported cell, lines over 110 characters (nbdev's generated `__all__`, which it
wraps at 120 characters, counted apart), and function-local imports of `fmea`
(`import fmea...`, `from fmea... import`, or a relative `from . import` inside a function).
"""
import argparse, ast, io, subprocess, sys, tarfile, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 110


def modules(root: Path):
    "module name -> path, for fmea/**.py and kernels/*.py (kernels/ is installed as fmea.kernels)"
    out = {}
    for p in sorted((root / "fmea").rglob("*.py")):
        if p.name.startswith("_") or "kernels" in p.relative_to(root / "fmea").parts[:1] or "tests" in p.parts: continue
        out[".".join(p.relative_to(root).with_suffix("").parts)] = p
    for p in sorted((root / "kernels").glob("*.py")):
        if not p.name.startswith("_"): out["fmea.kernels." + p.stem] = p
    return out


def _fmea_import(node) -> bool:
    if isinstance(node, ast.Import): return any(a.name == "fmea" or a.name.startswith("fmea.") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        if node.level: return True  # relative import inside the package
        return node.module is not None and (node.module == "fmea" or node.module.startswith("fmea."))
    return False


def _count_local_imports(tree) -> int:
    seen = set()
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(f):
                if _fmea_import(node): seen.add(id(node))
    return len(seen)


def cells(text: str):
    "the exported cells of an nbdev module: blocks that start with a `# %% ` marker"
    out, cur = [], None
    for l in text.splitlines():
        if l.startswith("# %% "):
            if cur is not None: out.append(cur)
            cur = []
        elif cur is not None: cur.append(l)
    if cur is not None: out.append(cur)
    return [[l for l in c] for c in out]


def module_metrics(p: Path) -> dict:
    text = p.read_text(encoding="utf-8")
    tree = ast.parse(text)
    names, generated = [], set()  # generated: the lines of nbdev's `__all__` (it wraps them at 120 characters)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            generated |= set(range(node.lineno - 1, node.end_lineno))
            try: names = list(ast.literal_eval(node.value))
            except ValueError: names = []
    cs = [c for c in cells(text) if any(l.strip() for l in c)]
    # strip trailing blank lines of each cell
    lens = []
    for c in cs:
        while c and not c[-1].strip(): c = c[:-1]
        lens.append(len(c))
    defs = []
    for c in cs:
        try: t = ast.parse("\n".join(c))
        except SyntaxError: continue
        defs.append(sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in t.body))
    def_cells = [d for d in defs if d]
    lines = text.splitlines()
    return dict(names=len(names), lines=len(lines), longest_cell=max(lens, default=0),
                defs_per_cell=(sum(def_cells) / len(def_cells)) if def_cells else 0.0,
                over=sum(len(l) > WIDTH for i, l in enumerate(lines) if i not in generated),
                longest_line=max((len(l) for i, l in enumerate(lines) if i not in generated), default=0),
                generated_over=sum(len(lines[i]) > WIDTH for i in generated),
                local_imports=_count_local_imports(tree))


def tree_metrics(root: Path) -> dict:
    return {m: module_metrics(p) for m, p in modules(root).items()}


def totals(ms: dict) -> dict:
    v = list(ms.values())
    dc = [m["defs_per_cell"] for m in v if m["defs_per_cell"]]
    return dict(modules=len(v), names=sum(m["names"] for m in v), lines=sum(m["lines"] for m in v),
                longest_cell=max((m["longest_cell"] for m in v), default=0),
                over=sum(m["over"] for m in v), generated_over=sum(m.get("generated_over", 0) for m in v),
                longest_line=max((m["longest_line"] for m in v), default=0),
                local_imports=sum(m["local_imports"] for m in v),
                biggest=max(v, key=lambda m: m["lines"])["lines"] if v else 0)


def from_rev(rev: str, dest: Path) -> Path:
    data = subprocess.run(["git", "archive", rev, "fmea", "kernels"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as t: t.extractall(dest, filter="data")
    return dest


COLS = [("names", "public names"), ("lines", "lines"), ("longest_cell", "longest cell"),
        ("defs_per_cell", "defs/cell"), ("over", f">{WIDTH} chars"), ("local_imports", "local fmea imports")]


def fmt(v): return f"{v:.1f}" if isinstance(v, float) else str(v)


def table(ms: dict) -> str:
    rows = ["| module | " + " | ".join(c[1] for c in COLS) + " |", "|---|" + "---:|" * len(COLS)]
    for m, d in ms.items(): rows.append(f"| {m} | " + " | ".join(fmt(d[k]) for k, _ in COLS) + " |")
    t = totals(ms)
    rows.append(f"| **{t['modules']} modules** | {t['names']} | {t['lines']} | {t['longest_cell']} (max) | | "
                f"{t['over']} (longest {t['longest_line']}) | {t['local_imports']} |")
    return "\n".join(rows)


def compare(before: dict, after: dict, label_b: str, label_a: str) -> str:
    tb, ta = totals(before), totals(after)
    is_core = lambda k: ".experiments." not in k and k != "fmea.cli"  # the CLI is the top layer
    core_b = {k: v for k, v in before.items() if is_core(k)}
    core_a = {k: v for k, v in after.items() if is_core(k)}
    rows = [f"| metric | {label_b} | {label_a} |", "|---|---:|---:|",
            f"| modules (core + experiments + cli) | {len(core_b)} + {len(before) - len(core_b) - 1} + 1 "
            f"| {len(core_a)} + {len(after) - len(core_a) - 1} + 1 |",
            f"| public names (all / core) | {tb['names']} / {totals(core_b)['names']} | {ta['names']} / {totals(core_a)['names']} |",
            f"| lines (all) | {tb['lines']} | {ta['lines']} |",
            f"| biggest core module (lines) | {max(core_b.items(), key=lambda kv: kv[1]['lines'])[0]} {totals(core_b)['biggest']} "
            f"| {max(core_a.items(), key=lambda kv: kv[1]['lines'])[0]} {totals(core_a)['biggest']} |",
            f"| core modules over 500 lines | {sum(v['lines'] > 500 for v in core_b.values())} | {sum(v['lines'] > 500 for v in core_a.values())} |",
            f"| longest exported cell (lines) | {tb['longest_cell']} | {ta['longest_cell']} |",
            f"| lines over {WIDTH} chars, written by us (longest) | {tb['over']} ({tb['longest_line']}) "
            f"| {ta['over']} ({ta['longest_line']}) |",
            f"| lines over {WIDTH} chars in nbdev's generated `__all__` | {tb['generated_over']} | {ta['generated_over']} |",
            f"| function-local fmea imports | {tb['local_imports']} | {ta['local_imports']} |"]
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--rev", help="measure a git revision instead of the working tree")
    g.add_argument("--compare", metavar="REV", help="print REV beside the working tree")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if a.rev: print(f"## {a.rev} ({subprocess.getoutput('git -C %s rev-parse --short %s' % (ROOT, a.rev))})\n")
        if a.rev or a.compare:
            before = tree_metrics(from_rev(a.rev or a.compare, Path(tmp)))
        if a.rev: print(table(before)); return 0
        after = tree_metrics(ROOT)
        if a.compare:
            short = subprocess.getoutput(f"git -C {ROOT} rev-parse --short {a.compare}")
            print(compare(before, after, f"before ({short})", "after (working tree)"))
            print("\n## before\n"); print(table(before))
            print("\n## after\n"); print(table(after)); return 0
        print(table(after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
