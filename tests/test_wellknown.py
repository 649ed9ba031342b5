"""Microsoft's well-known ids live in one table (m365archive/wellknown.py): no other product module spells
one out (the simulator models Microsoft on its own and is not checked)."""

from __future__ import annotations

import re
from pathlib import Path

from m365archive import wellknown

PRODUCT = Path(wellknown.__file__).parent
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def test_no_product_module_repeats_a_well_known_id() -> None:
    # the null GUID is also how a message shows the shape of a GUID
    values = [
        value
        for name, entry in vars(wellknown).items()
        if name.isupper()
        for value in (entry.values() if isinstance(entry, dict) else [entry])
    ]
    table = {v.lower() for v in values if isinstance(v, str) and GUID.fullmatch(v) and v != wellknown.NULL_GUID}
    assert len(table) >= 5
    repeated = []
    for path in sorted(PRODUCT.rglob("*.py")):
        if path.name == "wellknown.py" or "sim" in path.relative_to(PRODUCT).parts:
            continue
        # docstrings and comments may name an id for the reader; code must use the table
        code = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
        for number, line in enumerate(code, 1):
            for found in GUID.findall(line):
                if found.lower() in table and '"""' not in line:  # a docstring's first line may name it
                    repeated.append(f"{path.relative_to(PRODUCT)}:{number}: {found}")
    assert repeated == []
