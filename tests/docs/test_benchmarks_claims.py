"""``docs/benchmarks.md``'s table of claims is complete and current, and the README's Results
quote it: every row fills every column, every raw file it links exists, every model hash in it
is a shipped model's, and every number in the README's Results appears in the table."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
COLUMNS = ["#", "claim (target)", "value [95% CI]", "n", "machine", "model", "command", "raw",
           "verdict"]
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text (up to the next ``## ``)."""
    start = text.index(f"\n## {heading}\n") + len(heading) + 5
    end = text.find("\n## ", start)
    return text[start:] if end < 0 else text[start:end]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def claims() -> list[list[str]]:
    """The rows of the table of claims, as lists of cells."""
    body = _section((DOCS / "benchmarks.md").read_text(), "Claims")
    lines = [ln for ln in body.splitlines() if ln.startswith("|")]
    assert _cells(lines[0]) == COLUMNS, _cells(lines[0])
    return [_cells(ln) for ln in lines[2:]]


def test_every_claim_fills_every_column_and_has_a_verdict():
    rows = claims()
    assert len(rows) >= 20
    ids = [r[0] for r in rows]
    assert len(set(ids)) == len(ids), "claim numbers repeat"
    for row in rows:
        assert len(row) == len(COLUMNS), row
        assert all(row), f"claim {row[0]} has an empty cell: {row}"
        assert "@@" not in " ".join(row), f"claim {row[0]} still has a placeholder"


def test_every_raw_file_a_claim_links_exists():
    for row in claims():
        links = re.findall(r"\]\(([^)#]+)\)", row[COLUMNS.index("raw")])
        assert links, f"claim {row[0]} links no raw file"
        for link in links:
            assert (DOCS / link).resolve().is_file(), f"claim {row[0]}: {link} is missing"


def test_every_model_hash_in_the_table_is_a_shipped_models():
    shipped = {hashlib.sha256(p.read_bytes()).hexdigest()
               for p in (REPO / "models").glob("*.onnx")}
    for row in claims():
        for prefix in re.findall(r"\b[0-9a-f]{12}\b", row[COLUMNS.index("model")]):
            assert any(h.startswith(prefix) for h in shipped), \
                f"claim {row[0]} names model {prefix}, which is not shipped (remeasure it)"


def test_the_readme_results_quote_the_table():
    results = _section((REPO / "README.md").read_text(), "Results")
    table = "\n".join(" | ".join(r) for r in claims())
    quoted = set(NUMBER.findall(table))
    missing = [n for n in NUMBER.findall(results) if n not in quoted]
    assert not missing, f"README Results numbers not in the table of claims: {missing}"
