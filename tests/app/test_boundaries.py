"""The import rules of the application layer (docs/adr/0007-application-layer.md), read from the source:

* ``talktime.app`` draws nothing and parses no command line or request: it imports no typer, rich, click,
  fastapi, starlette or uvicorn, and no face (``talktime.cli``, ``talktime.api``). The live service's use
  cases (``talktime.app.service``: ingest, usage, one record, the current records) and the reading of a
  store a running server holds (``talktime.app.served``) are in the layer too.
* The faces moved onto the layer (``cli/main.py``'s meter, explain, policies, keys and serve;
  ``cli/whatif.py``'s simulate, compare and methodology; ``cli/billing.py``'s margin and invoice;
  ``cli/reconcile.py``; ``cli/export.py``, ``cli/measure.py``, ``cli/proxy.py``, ``cli/webhooks.py``; the
  HTTP API's invoice, record export and admin key routes, ``api/invoices.py``, ``api/records_export.py``
  and ``api/admin.py``) reach no engine, meter, policy, card or guards loader, record reader or writer,
  rating, invoicing or reconciliation logic, event store, measuring, relay or webhook secret directly:
  they call ``talktime.app`` and render. Renderers stay theirs (``talktime.simulate.report`` and
  ``charts``, ``talktime.io.results``, ``talktime.io.invoices``' render,
  ``talktime.core.invoicing.serialize``, ``talktime.io.exports``' writers, ``talktime.core.reconcile.render``,
  ``talktime.io.reconcile_html``, ``talktime.core.decimals``); a face may make another face (``serve``
  makes the HTTP API and the dashboard). Imports under ``if TYPE_CHECKING`` only name types and are not
  counted.

Still to move, and so not checked yet: demo (cli/demo.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "talktime"

UI = ("typer", "rich", "click", "fastapi", "starlette", "uvicorn", "talktime.cli", "talktime.api")

LOGIC = (
    "talktime.engine",
    "talktime.core.metering.meter",
    "talktime.core.metering.policy",
    "talktime.core.metering.describe",
    "talktime.core.simulate",
    "talktime.providers",
    "talktime.io.records_io",
    "talktime.simulate.run",
    "talktime.simulate.switch_run",
    "talktime.simulate.passes",
    "talktime.simulate.generate",
)
LOOKING_BACK = (*LOGIC, "talktime.io.ratecards", "talktime.io.guards", "talktime.core.plausibility")
#: An event store opened, read or written, and what a server keeps in one (keys, webhook secrets).
STORED = ("talktime.store", "talktime.ingest", "talktime.api.keys")
BILLING = ("talktime.core.invoicing.invoice", "talktime.core.invoicing.focus", "talktime.core.rating")
MOVED_FACES = {
    "cli/whatif.py": LOOKING_BACK,
    "cli/main.py": (*LOOKING_BACK, *STORED),
    "cli/export.py": (*LOOKING_BACK, *STORED, *BILLING, "talktime.core.invoicing.periods"),
    "cli/measure.py": (*LOGIC, "talktime.measure", "talktime.core.records", "talktime.io.records_io"),
    "cli/proxy.py": (*LOGIC, "talktime.proxy", "websockets", "uvloop"),
    "cli/webhooks.py": (*LOGIC, *STORED),
    "api/invoices.py": (*LOOKING_BACK, *STORED, *BILLING, "talktime.app.service"),
    "api/records_export.py": (*LOGIC, *STORED),
    "api/review.py": (*LOOKING_BACK, *STORED, *BILLING),  # the review use case is talktime.app.review
    "api/admin.py": (*LOGIC, "talktime.api.keys"),  # the key use cases are talktime.app.keys
    "cli/billing.py": (
        *LOOKING_BACK,
        "talktime.core.invoicing",
        "talktime.core.rating",
        "talktime.simulate.margin_run",
        "talktime.simulate.margin_grouped",
    ),
    "cli/reconcile.py": (
        *LOOKING_BACK,
        "talktime.importers",
        "talktime.core.reconcile.model",
        "talktime.core.reconcile.money",
    ),
}


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at the top or inside a function, outside ``if TYPE_CHECKING``."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{base}" if base else package
            yield base
        stack.extend(ast.iter_child_nodes(node))


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_application_layer_imports_no_face_and_no_ui_library() -> None:
    found = set()
    for path in sorted((PACKAGE / "app").glob("*.py")):
        module = f"talktime.app.{path.stem}"
        found |= {(module, name) for name in imports(path) if _under(name, UI)}
    assert found == set()


@pytest.mark.parametrize("face", sorted(MOVED_FACES))
def test_moved_faces_call_the_application_layer(face: str) -> None:
    reached = sorted({name for name in imports(PACKAGE / face) if _under(name, MOVED_FACES[face])})
    assert reached == [], f"{face} reaches past talktime.app: {reached}"
    assert any(_under(name, ("talktime.app",)) for name in imports(PACKAGE / face))
