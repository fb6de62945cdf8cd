"""The integration examples, as the integration tests run them (one place for both).

They live in docs/integrations.md, section "The examples the tests run" (the README links there;
until issue 26 they were a README section).
"""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
SECTION = "## The examples the tests run"


def example_block(lang: str) -> str:
    """The one ```lang block of the section SECTION of EXAMPLES."""
    text = EXAMPLES.read_text()
    assert SECTION in text, f"{EXAMPLES.name} lost its section '{SECTION}'"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"expected one {lang} block in '{SECTION}', found {len(blocks)}"
    return blocks[0]
