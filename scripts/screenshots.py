"""Regenerate screenshots/*.svg from the simulator at a fixed seed: run after any UI change, then look.

.venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scenes import SCENES, save  # noqa: E402


async def main() -> None:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    for scene in SCENES:
        path = await save(scene, out)
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    asyncio.run(main())
