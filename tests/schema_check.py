#!/usr/bin/python3
"""Fails when the Python side of the results schema drifts from src/store/schema.h.

usage: schema_check.py SOURCE_DIR

1. Every `inline constexpr char kFooBar[] = "..."` of the header is FOO_BAR in tools/psbench_schema.py
   with the same value, and the module has no schema name the header lacks.
2. The CellStatus enum and the module's STATUSES list the same values in the same order.
3. The Python readers spell no schema name themselves: no string literal equal to a schema value and
   none containing a group or attribute prefix ("metrics/", "metric_level:", ...). They import it.
"""
import importlib.util
import io
import pathlib
import re
import sys
import tokenize

READERS = ["tests/runner/read_results.py", "tests/runner/partial_rows.py", "tools/sampler_table.py", "tools/pick_tuned.py", "tools/fashion_table.py",
           "tools/psbench_table.py", "tests/report/table_check.py",
           "tools/psbench_results.py", "tools/psbench_figures.py", "tests/report/figures_check.py"]
# Literals that equal a schema value but mean something else in that file.
ALLOWED = {"tools/sampler_table.py": {"chains"}}  # a sampler option name in the row labels, not the attribute


def python_name(cpp_name):
    n = cpp_name[1:]
    n = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", n)
    n = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", n)
    return n.upper()


def string_literals(path):
    with open(path, "rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type == tokenize.STRING:
                body = re.sub(r'^[A-Za-z]*("""|\'\'\'|"|\')', "", tok.string)
                body = re.sub(r'("""|\'\'\'|"|\')$', "", body)
                yield tok.start[0], body


def main(root):
    root = pathlib.Path(root).resolve()
    header = (root / "src/store/schema.h").read_text()
    consts = dict(re.findall(r'inline constexpr char (k\w+)\[\] = "([^"]*)";', header))
    if len(consts) < 20:
        sys.exit(f"schema_check: parsed only {len(consts)} constants from schema.h; has its form changed?")
    spec = importlib.util.spec_from_file_location("psbench_schema", root / "tools/psbench_schema.py")
    py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(py)
    problems = []
    expected = {python_name(k): v for k, v in consts.items()}
    for name, value in expected.items():
        if not hasattr(py, name):
            problems.append(f"tools/psbench_schema.py: missing {name} = \"{value}\" (schema.h)")
        elif getattr(py, name) != value:
            problems.append(f"tools/psbench_schema.py: {name} = \"{getattr(py, name)}\", schema.h has \"{value}\"")
    for name in dir(py):
        if name.isupper() and isinstance(getattr(py, name), str) and name not in expected:
            problems.append(f"tools/psbench_schema.py: {name} is not in src/store/schema.h")

    enum = re.search(r"enum class CellStatus \{([^}]*)\}", header)
    members = [m.strip() for m in enum.group(1).split(",")] if enum else []
    if [consts.get("kStatus" + m) for m in members] != list(py.STATUSES):
        problems.append(f"CellStatus {{{', '.join(members)}}} and psbench_schema.STATUSES {py.STATUSES} differ")

    values = set(consts.values())
    prefixes = [v for v in values if v.endswith(("/", ":")) and len(v) > 2]
    for reader in READERS:
        allowed = ALLOWED.get(reader, set())
        for line, body in string_literals(root / reader):
            if body in values and body not in allowed:
                problems.append(f"{reader}:{line}: spells the schema name \"{body}\"; use psbench_schema")
            for p in prefixes:
                if p in body:
                    problems.append(f"{reader}:{line}: literal contains the schema prefix \"{p}\"; use psbench_schema")
    for p in problems:
        print(p)
    if problems:
        sys.exit(f"schema_check: {len(problems)} problem(s)")
    print(f"schema_check: {len(consts)} names and {len(members)} statuses agree; {len(READERS)} readers import them")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
