"""The README's code examples, as the integration tests run them (one place for both)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(lang: str) -> str:
    """The one ```lang block of the README section "AsymGRPO in verl / TRL"."""
    text = README.read_text()
    section = text.split("## AsymGRPO in verl / TRL", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"expected one {lang} block in the README section, found {len(blocks)}"
    return blocks[0]
