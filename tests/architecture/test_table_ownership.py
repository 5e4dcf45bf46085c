"""One owner per table: only the feature that owns a table writes it (INSERT, UPDATE, DELETE, REFRESH), in
raw SQL or through Piccolo; every other feature asks the owner's services. The map is the table in
docs/architecture.md ("Who owns which table"), read here, so the document and the rule cannot drift apart.

The scan reads every module under web/ with ``ast``: SQL in string literals (docstrings and comments left
out) and Piccolo's ``Table.insert/update/delete`` calls on the project's Table classes.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import asyncpg
from piccolo.table import Table

from web.settings import PROJECT_ROOT

WEB = PROJECT_ROOT / "web"
ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"
# The demo loaders build a clinic's data and a year of history in bulk, straight into every feature's
# tables (docs/architecture.md, "Exceptions"): they are tools around the product, not a path of it.
SEEDERS = {"web/demo.py", "web/demo_history.py",
           # Rewrites personal data in a separate copy of the database (vetbook mask), never the app's own.
           "web/ops/masking.py"}

_WRITE = re.compile(
    r"(?<!FOR )\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|REFRESH\s+MATERIALIZED\s+VIEW(?:\s+CONCURRENTLY)?)\s+([a-z_][a-z0-9_]*)"
)
_MAP_ROW = re.compile(r"^\|\s*`([a-z_]+)`\s*\|\s*([a-z]+)\s*\|", re.M)


def ownership_map() -> dict[str, str]:
    section = ARCHITECTURE.read_text().split("## Who owns which table", 1)[1].split("\n## ", 1)[0]
    return dict(_MAP_ROW.findall(section))


def feature_of(path: Path) -> str:
    parts = path.relative_to(WEB).parts
    return parts[0] if len(parts) > 1 else "app"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _table_classes() -> dict[str, str]:
    for tables_module in sorted(WEB.glob("*/tables.py")):
        importlib.import_module(f"web.{tables_module.parent.name}.tables")
    classes: dict[str, str] = {}
    pending = list(Table.__subclasses__())
    while pending:
        table = pending.pop()
        pending.extend(table.__subclasses__())
        if table.__module__.startswith("web."):
            classes[table.__name__] = table._meta.tablename
    return classes


def writes_in(path: Path, table_classes: dict[str, str]) -> list[tuple[int, str]]:
    """(line, table) of every write the module makes."""
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    # Module-level string constants, so that f"REFRESH MATERIALIZED VIEW {VIEW_NAME}" reads as SQL.
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [(node.lineno, table) for table in _WRITE.findall(node.value)]
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant)
                else constants.get(part.value.id, "{}") if isinstance(part.value, ast.Name) else "{}"
                for part in node.values)
            found += [(node.lineno, table) for table in _WRITE.findall(text)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("insert", "update", "delete") and isinstance(node.func.value, ast.Name)
              and node.func.value.id in table_classes):
            found.append((node.lineno, table_classes[node.func.value.id]))
    return found


def test_every_write_is_made_by_the_tables_owner() -> None:
    owners = ownership_map()
    table_classes = _table_classes()
    foreign = []
    for path in sorted(WEB.rglob("*.py")):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        if relative in SEEDERS:
            continue
        for line, table in writes_in(path, table_classes):
            if table in owners and owners[table] != feature_of(path):
                foreign.append(f"{relative}:{line} writes {table}, which {owners[table]} owns")
    assert not foreign, "\n".join(foreign)


def test_the_scan_sees_raw_and_piccolo_writes(tmp_path: Path) -> None:
    # The scanner itself: a raw UPDATE in a string, a Piccolo insert, and neither a docstring nor a lock.
    module = tmp_path / "sample.py"
    module.write_text(
        '"""UPDATE bookings in prose is not a write."""\n'
        'LOCK = "SELECT 1 FROM bookings FOR UPDATE OF bookings"\n'
        'WRITE = "UPDATE bookings SET status = $1"\n'
        "async def f():\n"
        "    await User.insert(User(name='x'))\n"
    )
    assert writes_in(module, {"User": "users"}) == [(3, "bookings"), (5, "users")]


def test_the_map_names_only_known_features() -> None:
    features = {path.name for path in WEB.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert set(ownership_map().values()) <= features, ownership_map()


async def test_the_map_names_every_table_of_the_schema(db: asyncpg.Connection) -> None:
    tables = {row["relname"] for row in await db.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition")}
    tables.discard("migration")  # Piccolo's own record of applied migrations
    assert tables == set(ownership_map()), (tables ^ set(ownership_map()))
