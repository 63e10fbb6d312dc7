"""schemathesis hooks for ``test_openapi.py`` (loaded with ``SCHEMATHESIS_HOOKS``).

One region of ``/invocations`` no JSON Schema can describe: in ``instances`` records, a key the
signature does not name is taken when every record has it with values of one shape, and refused
otherwise (MLflow builds one numpy array per key). The spec leaves such keys out
(``additionalProperties: false``); cases with them are dropped here, because their answer depends
on the other records, not on the schema. ``TURING_ST_COLUMNS`` names the signature's columns.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis


def _has_unknown_instance_key(body: Any, columns: set[str]) -> bool:
    if not isinstance(body, dict):
        return False
    records = body.get("instances")
    if not isinstance(records, list):
        return False
    return any(isinstance(r, dict) and not set(r) <= columns for r in records)


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Keep every case but those with a key of undescribable fate in ``instances`` records."""
    names = os.environ.get("TURING_ST_COLUMNS")
    if not names or case.operation.path != "/invocations":
        return True
    return not _has_unknown_instance_key(case.body, set(names.split(",")))
