"""The library reaches into no other library's private names (pluggy's hook execution, json's
C scanner and encoder) and sidesteps no frozen class: such code breaks on their next release."""

from __future__ import annotations

import re

from .test_module_size import library_modules

FORBIDDEN = re.compile(
    r"_inner_hookexec|scanstring|make_scanner|c_make_encoder|object\.__setattr__"
)


def test_no_library_module_uses_a_private_name_of_pluggy_json_or_attrs() -> None:
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in library_modules()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert found == []
