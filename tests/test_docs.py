"""The documentation says what the code does."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_error_code_the_rater_socket_can_send_is_documented():
    sources = "".join(
        p.read_text() for p in (ROOT / "experiments").rglob("*.py") if "migrations" not in p.parts
    )
    raised = set(re.findall(r'ProtocolError\(\s*"([a-z_]+)"', sources))
    raised |= set(re.findall(r'"code": "([a-z_]+)"', sources))
    documented = set(
        re.findall(r"^\| `([a-z_]+)` \|", (ROOT / "docs/protocol.md").read_text(), re.M)
    )
    assert raised, "no error codes found: the pattern is out of date"
    assert raised <= documented, f"undocumented: {sorted(raised - documented)}"


def _method_table() -> dict[str, str]:
    text = (ROOT / "docs/hype-method.md").read_text()
    # The parameter table's section only: the page has other tables (censoring flags).
    text = text.split("## Every parameter and its default", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", text, re.M))


@pytest.mark.django_db
def test_the_method_page_gives_every_protocol_parameter_with_the_default_a_new_study_has():
    from experiments.models import PROTOCOL_PARAMETERS, Study

    table = _method_table()
    assert list(table) == list(PROTOCOL_PARAMETERS), "one row per parameter, in field order"
    for name in PROTOCOL_PARAMETERS:
        default = Study._meta.get_field(name).get_default()
        if default is None:  # chosen at import (the display size), or empty until set
            assert "most common" in table[name] or table[name].startswith("empty"), name
        elif isinstance(default, bool):
            assert table[name] == str(default).lower(), name
        elif isinstance(default, str):
            assert table[name] == default, name
        else:
            assert float(table[name]) == default, name


def _table_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def _defined(path: Path, name: str) -> bool:
    text = path.read_text()
    owner, _, attribute = name.rpartition(".")
    if owner:  # Class.attribute: the class, then the attribute inside it
        body = text.split(f"class {owner}", 1)
        return len(body) == 2 and re.search(rf"(def |    ){attribute}\b", body[1]) is not None
    if path.suffix == ".js":
        return re.search(rf"(function|class) {name}\b|^  (async )?{name}\(", text, re.M) is not None
    return re.search(rf"^(def |class |async def ){name}\b|^{name}\b.*=", text, re.M) is not None


def test_every_file_and_function_the_architecture_page_names_is_there():
    text = (ROOT / "docs/architecture.md").read_text()
    for behaviour, file_cell, function_cell in _table_rows(text, "Where each behaviour lives"):
        (first,) = re.findall(r"`([^`]+)`", file_cell)
        current = ROOT / first
        assert current.is_file(), (behaviour, first)
        for token in re.findall(r"`([^`]+)`", function_cell):
            if "/" in token or re.search(r"\.(py|js)$", token):
                candidate = ROOT / token
                current = candidate if candidate.is_file() else current.parent / token
                assert current.is_file(), (behaviour, token)
            else:
                assert _defined(current, token), (behaviour, current.name, token)


def test_the_architecture_page_and_the_readme_name_every_module_and_only_modules_that_exist():
    architecture = (ROOT / "docs/architecture.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for text in (architecture, readme.split("## Where things are", 1)[1]):
        layout = text.split("## Layout", 1)[-1] if text is architecture else text
        for path in re.findall(r"^\| `([^`]+)`", layout, re.M):
            if "/" in path or "." in path:
                assert (ROOT / path).exists(), path
    modules = [
        p.relative_to(ROOT)
        for folder in ("experiments", "hype")
        for p in (ROOT / folder).rglob("*.py")
        if "migrations" not in p.parts and "commands" not in p.parts and p.name != "__init__.py"
    ]
    missing = [
        str(m) for m in modules if f"`{m.name}`" not in architecture and str(m) not in architecture
    ]
    assert missing == [], "modules the architecture page does not mention"
    scripts = sorted(p.name for p in (ROOT / "static/js").glob("*.js"))
    assert [s for s in scripts if s not in architecture] == [], "scripts it does not mention"
