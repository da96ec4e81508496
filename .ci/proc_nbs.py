"""Check that nbdev's docs processing (`nbdev_proc_nbs`, what `nbdev_docs` runs before quarto) succeeds on
every notebook, offline and without quarto.

    python .ci/proc_nbs.py [--workers 2] [NB ...]

`nbdev_proc_nbs` starts by installing quarto when it is missing (`nbdev.quarto._ensure_quarto`, which
downloads it and calls sudo). Quarto only renders the processed notebooks afterwards, so this script runs
the same steps as `nbdev.quarto._pre_docs` (refresh `_quarto.yml`, build the module index, write the
sidebar, then `nbdev.serve_drv.main` on each notebook with the `FilterDefaults` processors) with
quarto's installation replaced by an error, in a temporary copy of `settings.ini` and `nbs/` so that
nothing in the checkout changes. Each notebook is processed in its own process; every failure is
reported with the notebook's name, and the exit status is 1 if any failed.
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _no_quarto():
    raise RuntimeError("this check must not install quarto")


def _proc_one(src, dst):
    "Process one notebook exactly as nbdev_proc_nbs does (run in its own process, cwd = the copy)"
    import nbdev.serve_drv
    from nbdev.processors import FilterDefaults
    nbdev.serve_drv.main((Path(src), Path(dst), FilterDefaults))


def _job(args):
    src, dst, work = args
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRITON_INTERPRET": "1", "FMEA_PROGRESS": "0", "MPLBACKEND": "Agg"}
    t = time.monotonic()
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", src, dst], cwd=work, env=env,
                       capture_output=True, text=True)
    out = (r.stdout + r.stderr).splitlines()
    # the cause (e.g. "NameError: name 'runs' is not defined") and nbdev's "Error ... in cell N"
    key = [l for l in out if re.match(r"^[\w.]*(Error|Exception)\b.*:", l)]
    err = None if r.returncode == 0 else "\n".join("    " + l for l in (key or out[-12:]))
    return src, err, time.monotonic() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in nbs/")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one: return _proc_one(*a.one)
    a.notebooks = [p.resolve() for p in a.notebooks]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fmea-proc-") as tmp:
        work = Path(tmp)
        shutil.copy2(ROOT / "settings.ini", work / "settings.ini")
        shutil.copytree(ROOT / "nbs", work / "nbs",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_scratch*", "_proc", "_docs"))
        os.chdir(work)
        import nbdev.quarto, nbdev.doclinks
        from nbdev.config import get_config
        nbdev.quarto._ensure_quarto = _no_quarto
        get_config.cache_clear()
        cfg = get_config()
        nbdev.quarto.refresh_quarto_yml()
        nbdev.doclinks._build_modidx()  # a no-op here: the copy has no fmea/, so the checkout's index is untouched
        nbdev.quarto.nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
        nbs = [work / "nbs" / p.relative_to(ROOT / "nbs") for p in a.notebooks] if a.notebooks else \
            sorted(p for p in (work / "nbs").rglob("*.ipynb") if not any(s.startswith((".", "_")) for s in p.parts[len(work.parts):]))
        cache = work / "_proc"
        jobs = []
        for s in nbs:
            d = cache / s.relative_to(work / "nbs"); d.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((str(s), str(d), str(work)))
        failed = []
        with ThreadPoolExecutor(a.workers) as ex:
            for f in as_completed([ex.submit(_job, j) for j in jobs]):
                src, err, secs = f.result()
                name = Path(src).relative_to(work)
                if err: failed.append(name); print(f"FAIL {name} ({secs:.0f} s)\n{err}", flush=True)
                else: print(f"ok   {name} ({secs:.0f} s)", flush=True)
    print(f"nbdev_proc_nbs: {len(jobs) - len(failed)}/{len(jobs)} notebooks processed "
          f"in {time.monotonic() - start:.0f} s" + (f"; FAILED: {' '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
