"""The public evaluation corpora: Debian documentation packages, copied into folders.

`public` (the first set, tests/eval/questions.{en,zh,none}*.jsonl): English postgresql-doc-15
(about 1,200 HTML pages), Chinese debian-reference-zh-cn (14 large HTML chapters).

`zh-hard` (tests/eval/questions.zh-hard.*.jsonl): a Chinese haystack nobody on the team wrote or
tuned on: the Simplified Chinese manual pages of manpages-zh (sections 1, 5 and 8: about 400
short pages on neighbouring subjects, commands and configuration files), the Debian FAQ and the
New Maintainers' Guide in Simplified Chinese, the Debian Edu manual, and the Debian Reference in
Traditional Chinese.  Manual pages are rendered to text with groff (`man`'s own formatter) and
written as Markdown: the page's title line as `#`, each section (名称, 描述, 选项…) as `##`, text
as groff lays it out; a page that only points at another one (`.so`) is skipped.

Installed with apt when absent (root needed; otherwise the command to run is printed).  Copies,
not links: ingest does not follow symbolic links.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# name: (Debian package, folder it installs, glob of the files used)
PACKAGES = {
    "postgresql": ("postgresql-doc-15", Path("/usr/share/doc/postgresql-doc-15/html"), "*.html"),
    "debian-reference": ("debian-reference-zh-cn", Path("/usr/share/debian-reference"), "*.zh-cn.html"),
}

MANPAGES = Path("/usr/share/man/zh_CN")
MAN_SECTIONS = ("man1", "man5", "man8")
ZH_HARD = {
    "debian-faq": ("debian-faq-zh-cn", Path("/usr/share/doc/debian/FAQ/zh-cn"), "*.zh-cn.html"),
    "maint-guide": ("maint-guide-zh-cn", Path("/usr/share/doc/maint-guide-zh-cn/html"), "*.zh-cn.html"),
    "debian-edu": ("debian-edu-doc-zh-cn", Path("/usr/share/doc/debian-edu-doc-zh-cn"),
                   "debian-edu-bookworm-manual.html"),
    "debian-reference-tw": ("debian-reference-zh-tw", Path("/usr/share/debian-reference"), "*.zh-tw.html"),
}
# Tables of contents answer nothing: left out of the haystack (as the question rules say).
ZH_HARD_SKIP = {"index.zh-cn", "index.zh-tw", "pr01.zh-tw", "faqinfo.zh-cn"}

CORPORA = ("public", "zh-hard")


def ensure_installed(corpus: str = "public") -> None:
    specs = PACKAGES.values() if corpus == "public" else ZH_HARD.values()
    missing = [pkg for pkg, src, pattern in specs if not any(src.glob(pattern))]
    if corpus == "zh-hard":
        # Other packages (man-db, passwd) put a few pages in zh_CN too: look for one of its own.
        if not (MANPAGES / "man1" / "ls.1.gz").is_file():
            missing.append("manpages-zh")
        if shutil.which("groff") is None:
            missing.append("groff-base")
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        sys.exit(f"The evaluation corpus needs {', '.join(missing)}: run `sudo {' '.join(command)}`.")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(command, check=True, env=env)


def _copy(specs: dict, dest: Path, skip: set[str] = frozenset()) -> None:
    for name, (_, src, pattern) in specs.items():
        target = dest / name
        files = sorted(p for p in src.glob(pattern) if p.name.rsplit(".", 1)[0] not in skip)
        if target.is_dir() and len(list(target.iterdir())) == len(files):
            continue
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in files:
            shutil.copy2(path, target / path.name)


_SECTION = re.compile(r"^\S.*$")


def man_to_markdown(roff: str) -> str | None:
    """A manual page as Markdown (None for a page that only sources another)."""
    if re.match(r"\s*\.so\s", roff) and len(roff.splitlines()) <= 3:
        return None
    out = subprocess.run(["groff", "-k", "-Kutf8", "-Tutf8", "-mandoc", "-rLL=300n", "-dAD=l",
                          "-P-cbou"], input=roff.encode(), capture_output=True, check=False).stdout
    lines = [line for line in out.decode("utf-8", "replace").splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 3:
        return None
    first = lines[0].split()
    if lines[-1].split()[-1:] == first[-1:]:
        lines.pop()  # the footer: version, date, title
    md = [f"# {' '.join(first)}", ""]
    for line in lines[1:]:
        if not line.strip():
            if md[-1] != "":
                md.append("")
        elif _SECTION.match(line):
            md += ["", f"## {line.strip()}", ""]
        else:
            md.append(line.strip())
    return "\n".join(md).strip() + "\n"


def _manpages(dest: Path) -> None:
    target = dest / "manpages"
    pages = sorted(p for section in MAN_SECTIONS for p in (MANPAGES / section).glob("*.gz")
                   if not p.is_symlink())
    if target.is_dir() and len(list(target.iterdir())) > 0.9 * len(pages):
        return
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for page in pages:
        text = man_to_markdown(gzip.decompress(page.read_bytes()).decode("utf-8", "replace"))
        if text:  # ls.1.gz -> ls.1.md: its stem is "ls.1"
            (target / (page.name[:-3] + ".md")).write_text(text, encoding="utf-8")


def build_corpus(dest: Path, corpus: str = "public") -> Path:
    """Copy the pages of one corpus into dest/<name>/ (idempotent); returns dest."""
    ensure_installed(corpus)
    if corpus == "public":
        _copy(PACKAGES, dest)
    else:
        _copy(ZH_HARD, dest, ZH_HARD_SKIP)
        _manpages(dest)
    return dest


if __name__ == "__main__":
    which = sys.argv[2] if len(sys.argv) > 2 else "public"
    print(build_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else f".eval/corpus-{which}"), which))
