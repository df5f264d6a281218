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
    return dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", text, re.M))


@pytest.mark.django_db
def test_the_method_page_gives_every_protocol_parameter_with_the_default_a_new_study_has():
    from experiments.models import PROTOCOL_PARAMETERS, Study

    table = _method_table()
    assert list(table) == list(PROTOCOL_PARAMETERS), "one row per parameter, in field order"
    for name in PROTOCOL_PARAMETERS:
        default = Study._meta.get_field(name).get_default()
        if default is None:  # the display size: chosen at import
            assert "most common" in table[name], name
        elif isinstance(default, bool):
            assert table[name] == str(default).lower(), name
        elif isinstance(default, str):
            assert table[name] == default, name
        else:
            assert float(table[name]) == default, name
