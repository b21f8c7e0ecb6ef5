"""Screenshots of the portal for the README: docs/portal-ask.png (an answer with an open passage)
and docs/portal-library.png, taken by the real-model browser test over a fresh temp data folder.

    .venv/bin/python bench/screenshots.py      # needs /usr/bin/chromium (`make browser`)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, PORTAL_SCREENSHOTS=str(out))
    test = "tests/portal/test_portal_real.py::test_upload_a_pdf_then_ask_about_it_and_see_the_quoted_sentence"
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                            test], cwd=ROOT, env=env)
    for name in ("portal-ask.png", "portal-library.png"):
        path = out / name
        print(f"{path}: {'%d bytes' % path.stat().st_size if path.exists() else 'MISSING'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
