"""Execute the notebooks and save their outputs; check that the saved outputs are there and not stale.

    python .ci/notebooks.py run nbs/02_forward_grad.ipynb [nbs/04_nes.ipynb ...] [--timeout 900]
    python .ci/notebooks.py check
    python .ci/notebooks.py kernelspec nbs/tests/test_x.ipynb [...]   # declare the kernel only (no execution)

`run` executes each notebook in order, in place, in a fresh kernel of this environment's Python
(cwd = the notebook's folder; OMP_NUM_THREADS=1 TRITON_INTERPRET=1 FMEA_PROGRESS=0), skipping the cells
that `nbdev_test` skips (`#| slow`, `#| cuda`, `#| eval: false`, `nbdev_export(`): those keep the outputs
they had, which come from a real run. It then records the kernelspec and a hash of the code cells'
sources in the notebook metadata, cleans the notebook as `nbdev_clean` does (outputs kept), and writes
it atomically. A notebook whose execution fails is left unchanged and the command exits with status 1.

`check` fails (exit status 1) if a tutorial notebook (`nbs/*.ipynb`, not `nbs/tests/`) has no
outputs; if a notebook of one of the five sections of the design card has no image output; if a
notebook's code changed after its outputs were saved (stale; it prints the one command that refreshes
them); if a notebook (tests included) declares no kernelspec; or if anything in `fmea/` or `nbs/`
switches the matplotlib backend.
"""
import argparse, asyncio, hashlib, json, os, re, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
META_KEY = "fmea"  # notebook metadata key; listed in settings.ini `allowed_metadata_keys` so nbdev_clean keeps it
SKIP_FLAGS = {"slow", "cuda"}  # settings.ini `tst_flags`: the cells nbdev_test skips
KERNELSPEC = {"display_name": "python3", "language": "python", "name": "python3"}  # as nbdev_clean writes it
ENV = {"OMP_NUM_THREADS": "1", "TRITON_INTERPRET": "1", "FMEA_PROGRESS": "0"}
# the five sections of the design card and the notebook that teaches each (a name pattern, since notebooks
# get renumbered): each must show at least one figure
SECTIONS = {"JVP math": "*_forward_grad", "NES": "*_nes", "router rewrite": "*_routers",
            "G4-G8 sandbox": "*_sandbox", "factorial statistics": "*_stats"}
IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")


def source_hash(nb: dict) -> str:
    "sha256 of the code cells' sources (as nbdev_clean leaves them), so prose edits and cleaning do not count"
    h = hashlib.sha256()
    for c in nb["cells"]:
        if c["cell_type"] != "code": continue
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        h.update(src.encode("utf-8") + b"\0")
    return h.hexdigest()


def skipped(source: str) -> bool:
    "True for a cell that nbdev_test does not run"
    from fastcore.basics import AttrDict
    from nbdev.process import extract_directives
    if "nbdev_export" + "(" in source: return True
    d = extract_directives(AttrDict(source=source, cell_type="code"), remove=False)
    if d.get("eval:", [""])[0].lower() == "false": return True
    return bool(SKIP_FLAGS & d.keys())


def _client(nb, path: Path, timeout: float):
    from nbclient import NotebookClient

    class Client(NotebookClient):
        "Runs the cells nbdev_test runs; skipped cells keep their saved outputs; one time budget per notebook"
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if cell.cell_type == "code" and skipped(cell.source): return cell
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    deadline = time.monotonic() + timeout
    def remaining(cell):
        left = deadline - time.monotonic()
        if left <= 0: raise TimeoutError(f"{path}: over the {timeout:.0f} s budget for the whole notebook")
        return left

    env = {**os.environ, **ENV}
    env.pop("MPLBACKEND", None)  # the reader's kernel draws inline; so must ours
    return Client(nb, timeout=None, timeout_func=remaining, kernel_name="python3", record_timing=False,
                  resources={"metadata": {"path": str(path.parent)}}, env=env)


def clean(nb: dict) -> dict:
    "nbdev_clean's cleaning, with this repository's settings.ini (outputs and our metadata key kept)"
    from nbdev.clean import _nbdev_clean
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        _nbdev_clean(nb)
    finally: os.chdir(cwd)
    return nb


def write_atomic(nb: dict, path: Path):
    from execnb.nbio import nb2str
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f: f.write(nb2str(nb))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True); raise


def run_one(path: Path, timeout: float) -> bool:
    import nbformat
    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    print(f"running {path} ...", flush=True)
    try: asyncio.run(_client(nb, path, timeout).async_execute())
    except Exception as e:
        msg = str(e).strip().splitlines()
        print(f"FAILED {path} after {time.monotonic() - start:.0f} s (notebook left unchanged):\n"
              + "\n".join(msg[-25:]), file=sys.stderr, flush=True)
        return False
    d = json.loads(nbformat.writes(nb))
    d["metadata"]["kernelspec"] = dict(KERNELSPEC)
    d = clean(d)
    secs = time.monotonic() - start
    d["metadata"][META_KEY] = {"source_sha256": source_hash(d), "executed_s": round(secs, 1)}
    write_atomic(d, path)
    n_img = sum(any(t in o.get("data", {}) for t in IMAGE_TYPES) for c in d["cells"] for o in c.get("outputs", []))
    print(f"ok {path}: {secs:.0f} s, {n_img} image output(s)", flush=True)
    return True


def tutorial_notebooks():
    return sorted(p for p in NBS.glob("*.ipynb"))


def all_notebooks():
    return sorted(p for p in NBS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def n_outputs(nb): return sum(len(c.get("outputs", [])) for c in nb["cells"] if c["cell_type"] == "code")


def n_images(nb):
    return sum(any(t in o.get("data", {}) for t in IMAGE_TYPES)
               for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))


def is_stale(nb) -> bool:
    rec = nb.get("metadata", {}).get(META_KEY, {})
    return rec.get("source_sha256") != source_hash(nb)


BACKEND_RE = re.compile(r"matplotlib\s*\.\s*use\s*\(|\.use\s*\(\s*['\"]agg['\"]|switch_backend", re.I)


def backend_switches():
    "lines of fmea/ and nbs/ that change the matplotlib backend"
    hits = []
    files = [p for p in (ROOT / "fmea").rglob("*.py")] + all_notebooks()
    for p in sorted(files):
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".ipynb":
            try: cells = json.loads(text)["cells"]
            except (json.JSONDecodeError, KeyError): continue  # reported by check() as not valid JSON
            for i, c in enumerate(cells):
                if c["cell_type"] != "code": continue
                for l in "".join(c["source"]).splitlines():
                    if BACKEND_RE.search(l): hits.append(f"{p.relative_to(ROOT)} cell {i}: {l.strip()}")
        else:
            for n, l in enumerate(text.splitlines(), 1):
                if BACKEND_RE.search(l): hits.append(f"{p.relative_to(ROOT)}:{n}: {l.strip()}")
    return hits


def _load(p: Path):
    "The notebook's JSON (read twice if a writer was mid-way), or None if it does not parse"
    for attempt in range(2):
        try: return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            if attempt == 0: time.sleep(2)
    return None


def check() -> int:
    problems, stale = [], []
    nbs = {p: _load(p) for p in all_notebooks()}
    for p, nb in nbs.items():
        if nb is None: problems.append(f"{p.relative_to(ROOT)}: not valid JSON")
    nbs = {p: nb for p, nb in nbs.items() if nb is not None}
    tuts = [p for p in tutorial_notebooks() if p in nbs]
    for p in tuts:
        nb = nbs[p]
        rel = p.relative_to(ROOT)
        if n_outputs(nb) == 0: problems.append(f"{rel}: no outputs")
        if is_stale(nb): stale.append(p)
    no_kernel = [p for p, nb in nbs.items() if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3"]
    for p in no_kernel: problems.append(f"{p.relative_to(ROOT)}: no kernelspec")
    for section, pat in SECTIONS.items():
        found = sorted(NBS.glob(pat + ".ipynb"))
        if not found: problems.append(f"section {section!r}: no notebook nbs/{pat}.ipynb"); continue
        if not any(n_images(nbs[p]) for p in found if p in nbs):
            problems.append(f"section {section!r}: {', '.join(str(p.relative_to(ROOT)) for p in found)} "
                            f"has no image output")
    for h in backend_switches(): problems.append(f"backend switch: {h}")
    for s in stale:
        rec = nbs[s].get("metadata", {}).get(META_KEY)
        why = "code changed since its outputs were saved" if rec else "never executed by .ci/notebooks.py run"
        problems.append(f"{s.relative_to(ROOT)}: stale ({why})")
    n_img = {p.name: n_images(nbs[p]) for p in tuts}
    print(f"{len(tuts)} tutorial notebooks; {sum(1 for v in n_img.values() if v)} with images "
          f"({sum(n_img.values())} images in all)")
    if problems:
        print(f"{len(problems)} problem(s):"); print("\n".join("  " + p for p in problems))
        if stale:
            print("refresh the stale outputs with:\n  python .ci/notebooks.py run "
                  + " ".join(str(s.relative_to(ROOT)) for s in stale))
        nk = [p for p in no_kernel if p not in stale]
        if nk:
            print("declare the kernel of the others with:\n  python .ci/notebooks.py kernelspec "
                  + " ".join(str(p.relative_to(ROOT)) for p in nk))
        return 1
    print("notebooks: outputs present, section figures present, none stale, no backend switch")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute notebooks in place and save their outputs")
    r.add_argument("notebooks", nargs="+", type=Path)
    r.add_argument("--timeout", type=float, default=900, help="seconds per notebook (default 900)")
    sub.add_parser("check", help="outputs present, section figures present, none stale, no backend switch")
    k = sub.add_parser("kernelspec", help="declare the python3 kernel in notebooks (nothing executed)")
    k.add_argument("notebooks", nargs="+", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "check": return check()
    if a.cmd == "kernelspec":
        for p in a.notebooks:
            d = json.loads(p.read_text(encoding="utf-8"))
            d["metadata"]["kernelspec"] = dict(KERNELSPEC)
            write_atomic(clean(d), p.resolve()); print(f"kernelspec set: {p}")
        return 0
    missing = [p for p in a.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing: ap.error(f"not a notebook: {', '.join(map(str, missing))}")
    os.environ.update(ENV)
    failed = [p for p in a.notebooks if not run_one(p.resolve(), a.timeout)]
    if failed: print(f"{len(failed)} notebook(s) failed: {' '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
