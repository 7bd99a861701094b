#!/usr/bin/python3
"""Fails when a lower layer includes a higher one (docs/ARCHITECTURE-LAYERS.md lists the order).

usage: layers_check.py SOURCE_DIR

A file's module is its directory under src/ (src/nn/unet.h -> nn) or the top-level metrics/ and
baselines/; an included header's module is the first component of its quoted path ("priors/prior.h" ->
priors). Angle-bracket includes (third-party headers) are not checked.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_order(root):
    text = (root / "docs" / "ARCHITECTURE-LAYERS.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    if not block:
        sys.exit("layers_check: no ```layers block in docs/ARCHITECTURE-LAYERS.md")
    return [line.split()[0] for line in block.group(1).splitlines() if line.strip()]


def module_of(root, path):
    rel = path.relative_to(root).parts
    return rel[1] if rel[0] == "src" else rel[0]


def main(root):
    root = pathlib.Path(root).resolve()
    order = layer_order(root)
    rank = {m: i for i, m in enumerate(order)}
    files = [p for d in ("src", "metrics", "baselines") for p in sorted((root / d).rglob("*"))
             if p.suffix in (".h", ".cpp") and p.is_file()]
    problems = []
    for path in files:
        mod = module_of(root, path)
        if mod not in rank:
            problems.append(f"{path.relative_to(root)}: module '{mod}' is not in the layer list")
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m or "/" not in m.group(1):
                continue
            dep = m.group(1).split("/")[0]
            if dep not in rank:
                problems.append(f"{path.relative_to(root)}:{lineno}: includes \"{m.group(1)}\" of unknown module '{dep}'")
            elif rank[dep] > rank[mod]:
                problems.append(f"{path.relative_to(root)}:{lineno}: {mod} includes \"{m.group(1)}\" of the higher "
                                f"layer {dep} (order: {' < '.join(order)})")
    for p in problems:
        print(p)
    if problems:
        sys.exit(f"layers_check: {len(problems)} upward include(s)")
    print(f"layers_check: {len(files)} files, no upward includes ({' < '.join(order)})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
