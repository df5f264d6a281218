"""The documentation says what the code does."""

import re
from pathlib import Path

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
