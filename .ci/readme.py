"""Write README.md from nbs/index.ipynb (nbdev_readme needs quarto, which cannot be installed offline).

Markdown cells are copied, with links to images beside the notebook (`images/x.png`) made relative to the
repository root (`nbs/images/x.png`). Code cells are shown as Python blocks followed by their saved text
output (what `print` wrote), so the README shows what the executed example printed; a cell with `#| hide`
is left out, one with `#| echo: false` shows only its output. nbdev directive lines are dropped.
Run from the repository root: `python .ci/readme.py`.
"""
import json, re
from pathlib import Path

def _text_outputs(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stdout": out.append("".join(o["text"]))
        elif o.get("output_type") in ("execute_result", "display_data") and "text/markdown" in o.get("data", {}):
            out.append("".join(o["data"]["text/markdown"]))
    return "".join(out).rstrip()

def readme(nb_path="nbs/index.ipynb") -> str:
    nb_dir = Path(nb_path).parent.as_posix()
    cells = json.loads(Path(nb_path).read_text(encoding="utf-8"))["cells"]
    out = ["<!-- generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file -->"]
    for c in cells:
        src = "".join(c["source"]).strip()
        if c["cell_type"] == "markdown":
            out.append(re.sub(r"(!\[[^\]]*\]\()(?!https?:|/)([^)]+\))", rf"\1{nb_dir}/\2", src))
        elif c["cell_type"] == "code":
            lines = src.splitlines()
            if any(re.match(r"#\|\s*hide\b", l) for l in lines): continue
            echo = not any(re.match(r"#\|\s*echo:\s*false", l) for l in lines)
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
            if code and echo: out.append(f"```python\n{code}\n```")
            text = _text_outputs(c)
            if text: out.append(f"```\n{text}\n```")
    return "\n\n".join(out) + "\n"

if __name__ == "__main__":
    Path("README.md").write_text(readme(), encoding="utf-8")
