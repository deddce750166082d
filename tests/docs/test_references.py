"""References a reader can follow: every cited section and heading exists inside the repository.

Code, tests and docs cite ``docs/protocol.md §X.Y`` and ``docs/design.md``; a citation of a
section that does not exist, or of a note kept outside the repository, sends the reader nowhere.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: Suffixes of the files that may cite the docs.
TEXT_SUFFIXES = frozenset({".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".json", ".yml", ".yaml"})
#: Names of notes that live outside the repository (spelt in pieces, so this file does not cite them).
OUTSIDE = (*(name + ".md" for name in ("PROTOCOL", "DESIGN", "TEAMS")), "../" + "shared")
#: A markdown heading that starts with a section number: ``## 2. Logins``, ``### 2.2 Live login``.
NUMBERED_HEADING = re.compile(r"^#{1,4} (\d+(?:\.\d+)*)\.? ", re.MULTILINE)
#: ``protocol.md §2.2`` (also as ``protocol.md`` in backquotes or a link), with the sections listed
#: after it: ``§5.6, §5.7`` or ``§2.3; §10``.
CITATION = re.compile(
    r"protocol\.md(?:`|\]\([^)\s]*\))?,? (§\d+(?:\.\d+)*(?:(?:, |; | and )§\d+(?:\.\d+)*)*)"
)
SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
#: A link to one of the two references with an anchor: ``design.md#the-stepper``.
ANCHOR_LINK = re.compile(r"\((?:[^)\s]*/)?(protocol|design)\.md#([^)\s]+)\)")


def repository_files() -> list[Path]:
    """The tracked text files (every text file outside hidden and build folders, without git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        paths = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        paths = [
            path
            for path in ROOT.rglob("*")
            if not any(
                part.startswith(".") or part.endswith(".egg-info")
                for part in path.relative_to(ROOT).parts
            )
        ]
    return sorted(path for path in paths if path.suffix in TEXT_SUFFIXES and path.is_file())


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def numbered_sections(text: str) -> set[str]:
    return set(NUMBERED_HEADING.findall(text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def cited_sections(text: str) -> list[str]:
    return [
        section for match in CITATION.finditer(text) for section in SECTION.findall(match.group(1))
    ]


def test_the_references_exist() -> None:
    assert (DOCS / "protocol.md").is_file()
    assert (DOCS / "design.md").is_file()


def test_every_cited_protocol_section_exists() -> None:
    sections = numbered_sections(read(DOCS / "protocol.md"))
    missing = [
        f"{path.relative_to(ROOT)}: §{section}"
        for path in repository_files()
        for section in cited_sections(read(path))
        if section not in sections
    ]
    assert not missing, f"cited sections missing from docs/protocol.md: {missing}"


def test_protocol_cites_only_its_own_sections() -> None:
    """Inside docs/protocol.md a bare ``§X.Y`` is a cross-reference to one of its own sections."""
    text = read(DOCS / "protocol.md")
    missing = sorted(set(SECTION.findall(text)) - numbered_sections(text))
    assert not missing, f"docs/protocol.md refers to sections it lacks: {missing}"


def test_every_anchor_names_a_heading() -> None:
    headings = {name: anchors(read(DOCS / f"{name}.md")) for name in ("protocol", "design")}
    broken = [
        f"{path.relative_to(ROOT)}: {name}.md#{anchor}"
        for path in repository_files()
        for name, anchor in ANCHOR_LINK.findall(read(path))
        if anchor not in headings[name]
    ]
    assert not broken, f"links to headings that do not exist: {broken}"


@pytest.mark.parametrize("name", ["protocol", "design"])
def test_links_inside_a_reference_name_its_headings(name: str) -> None:
    text = read(DOCS / f"{name}.md")
    broken = sorted(set(re.findall(r"\]\(#([^)\s]+)\)", text)) - anchors(text))
    assert not broken, f"{name}.md links to headings it lacks: {broken}"


def test_no_file_cites_notes_outside_the_repository() -> None:
    stale = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in repository_files()
        for number, line in enumerate(read(path).splitlines(), start=1)
        if any(name in line for name in OUTSIDE)
    ]
    assert not stale, f"citations of notes outside the repository: {stale}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(docs/protocol.md §2.2 rule 2)", ["2.2"]),
        ("(docs/protocol.md §5.6, §5.7, §7.5, §7.6, with)", ["5.6", "5.7", "7.5", "7.6"]),
        ("(docs/protocol.md §2.3; §10)", ["2.3", "10"]),
        ("see [docs/protocol.md](protocol.md#9-events) §9.3", ["9.3"]),
        ("no citation: §4 alone", []),
    ],
)
def test_citations_are_read_with_every_listed_section(text: str, expected: list[str]) -> None:
    assert cited_sections(text) == expected


def test_the_checks_see_a_stale_citation() -> None:
    """The scans above would catch the old form of a citation, and a section that is not there."""
    old = "(" + OUTSIDE[0] + " §2.2)"
    assert any(name in old for name in OUTSIDE)
    assert cited_sections("docs/protocol.md §" + "99.1") == ["99.1"]
    assert "99.1" not in numbered_sections(read(DOCS / "protocol.md"))
    assert (
        slug("3.4 `Set-RegistrationToken`: what is kept") == "34-set-registrationtoken-what-is-kept"
    )
