"""Write README.md from nbs/index.ipynb (nbdev_readme needs quarto, which cannot be installed offline).

Markdown cells are copied; code cells are shown as Python blocks unless they carry `#| hide`; nbdev
directive lines are dropped. Run from the repository root: `python .ci/readme.py`.
"""
import json, re
from pathlib import Path

def readme(nb_path="nbs/index.ipynb") -> str:
    cells = json.loads(Path(nb_path).read_text())["cells"]
    out = ["<!-- generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file -->"]
    for c in cells:
        src = "".join(c["source"]).strip()
        if c["cell_type"] == "markdown": out.append(src)
        elif c["cell_type"] == "code":
            lines = src.splitlines()
            if any(re.match(r"#\|\s*hide\b", l) for l in lines): continue
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
            if code: out.append(f"```python\n{code}\n```")
    return "\n\n".join(out) + "\n"

if __name__ == "__main__":
    Path("README.md").write_text(readme())
