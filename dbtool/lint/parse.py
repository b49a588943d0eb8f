"""A migration file as the statements dbtool sends, each parsed by PostgreSQL's own grammar.

Files are split exactly as `migrate` splits them (dbtool.migration_steps.split, psql's rules), so a
statement here is a statement there, with its line. Each is parsed by libpg_query through postgast:
the tree is libpg_query's protobuf (pg_query.proto), the same one every libpg_query binding exposes.
The statements of a DO block's PL/pgSQL body (pg_query_parse_plpgsql) are parsed too: they run in
the migration's transaction like any other. psql meta-commands (`\\ir`) are not SQL: they are cut
out and reported by the caller when the file is a migration's.

postgast ships a .pyi that mypy cannot read, so mypy skips the package: parse trees are `Any` here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from ..errors import MigrationError
from ..migration_steps import lex, read_directives, split

Node = Any  # a concrete libpg_query protobuf message (IndexStmt, RangeVar, ...)


def _postgast() -> Any:
    import postgast

    return postgast


def pb() -> Any:
    """libpg_query's protobuf module (message classes and enum values)."""
    return _postgast().pg_query_pb2


@lru_cache(maxsize=None)
def grammar_version() -> int:
    """PG_VERSION_NUM of the grammar libpg_query was built from (180004: PostgreSQL 18.4)."""
    return int(_postgast().parse("SELECT 1").version)


def grammar_major() -> int:
    return grammar_version() // 10000


def parser_description() -> str:
    v = grammar_version()
    return f"PostgreSQL {v // 10000}.{v % 10000} grammar (libpg_query, via postgast {metadata.version('postgast')})"


# -- tree helpers ---------------------------------------------------------------------------------
def inner(node: Node) -> Node:
    """The concrete message inside a `Node` wrapper (None when empty); a concrete message as it is."""
    if node is None:
        return None
    oneofs = type(node).DESCRIPTOR.oneofs
    if len(oneofs) == 1 and oneofs[0].name == "node":
        which = node.WhichOneof("node")
        return getattr(node, which) if which else None
    return node


def kind(node: Node) -> str:
    """The message's type name: IndexStmt, AlterTableCmd, ..."""
    return type(node).DESCRIPTOR.name if node is not None else ""


def strings(nodes: Any) -> list[str]:
    """The values of a list of String nodes (a qualified name, a column list)."""
    out = []
    for n in nodes:
        s = inner(n)
        if s is not None and kind(s) == "String":
            out.append(s.sval)
    return out


def walk(node: Node) -> Iterator[Node]:
    """Every concrete message under `node` (itself included), depth first."""
    stack = [node]
    while stack:
        n = inner(stack.pop())
        if n is None:
            continue
        yield n
        children = []
        for fd, value in n.ListFields():
            if fd.message_type is None:
                continue
            if hasattr(value, "ListFields"):
                children.append(value)
            else:  # a repeated field
                children.extend(value)
        stack.extend(reversed(children))


def has(node: Node, name: str) -> bool:
    try:
        return bool(node.HasField(name))
    except ValueError:
        return False


# -- files and statements -------------------------------------------------------------------------
@dataclass
class Statement:
    """One statement as dbtool sends it (or one of a DO block's body), parsed."""

    file: "SourceFile"
    index: int            # the top-level statement it is (or runs inside), 0-based, in its file
    text: str
    line: int             # 1-based line and column of its first character in the file
    column: int
    node: Node | None     # the parsed statement (None: it did not parse)
    error: str | None = None
    inside: "Statement | None" = None  # the DO statement whose body holds it
    nested: list["Statement"] = field(default_factory=list)  # a DO block's statements

    def at(self, location: int) -> tuple[int, int]:
        """File line and column of a libpg_query location (a byte offset into this statement's text)."""
        if location is None or location < 0:
            return self.line, self.column
        chars = len(self.text.encode("utf-8")[:location].decode("utf-8", "ignore"))
        before = self.text[:chars]
        newlines = before.count("\n")
        if newlines == 0:
            return self.line, self.column + chars
        return self.line + newlines, chars - before.rfind("\n")

    @property
    def head(self) -> str:
        """The statement's first words, to name it in a message."""
        words = re.sub(r"\s+", " ", self.text.strip()).split(" ")
        return " ".join(words[:4]) + (" ..." if len(words) > 4 else "")


@dataclass
class Comment:
    offset: int
    line: int
    column: int
    text: str


@dataclass
class SourceFile:
    path: Path
    shown: str                       # how findings name it (relative to the checkout when inside it)
    text: str
    statements: list[Statement] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)       # each top-level statement's end offset
    starts: list[int] = field(default_factory=list)     # and start offset
    meta_commands: list[tuple[int, str]] = field(default_factory=list)  # (line, text) of psql meta-commands
    directives: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[int, int, str, str]] = field(default_factory=list)  # (line, column, rule, message)

    @property
    def transactional_directive(self) -> bool:
        return self.directives.get("transactional", "true").lower() != "false"

    def line_of(self, offset: int) -> tuple[int, int]:
        before = self.text[:offset]
        return before.count("\n") + 1, offset - before.rfind("\n")

    def all_statements(self) -> Iterator[Statement]:
        """Top-level statements in order, each followed by its DO block's statements."""
        for s in self.statements:
            yield s
            yield from s.nested


def _blank_meta_commands(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Cut psql meta-commands (a backslash where a statement would start, to the end of its line) out of
    the text, keeping every offset; returns the SQL and the commands with their lines."""
    found: list[tuple[int, str]] = []
    if not re.search(r"^[ \t]*\\", text, re.M):  # no line starts with a backslash: nothing to cut
        return text, found
    while True:
        stmts, _ = split(text)
        meta = next((s for s in stmts if s.text.startswith("\\")), None)
        if meta is None:
            return text, found
        start = sum(len(ln) for ln in text.splitlines(keepends=True)[:meta.line - 1])
        start = text.index("\\", start)
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        found.append((meta.line, text[start:end].strip()))
        text = text[:start] + " " * (end - start) + text[end:]


def parse_one(text: str) -> tuple[Node, str | None, int]:
    """(statement node, error, error byte offset) of one statement's text."""
    postgast = _postgast()
    try:
        tree = postgast.parse(text)
    except postgast.PgQueryError as exc:
        return None, str(getattr(exc, "message", None) or exc), max(0, int(getattr(exc, "cursorpos", 0) or 0) - 1)
    nodes = [inner(raw.stmt) for raw in tree.stmts]
    if len(nodes) != 1:  # the splitter hands over one statement; an empty one parses to none
        return (nodes[0] if nodes else None), (None if nodes else "empty statement"), 0
    return nodes[0], None, 0


def read(path: Path, shown: str) -> SourceFile:
    """Read and parse a file. A file that cannot be decoded has one problem and no statements."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        src = SourceFile(path, shown, "")
        src.problems.append((1, 1, "syntax-error", f"not UTF-8 at byte {exc.start}: cannot be applied"))
        return src
    src = SourceFile(path, shown, text)
    try:
        src.directives = read_directives(text, "", "-")
    except MigrationError as exc:
        m = re.match(r"^:(\d+): (.*?) \(migration -; nothing was applied\)$", str(exc))
        src.problems.append((int(m.group(1)) if m else 1, 1, "bad-directive", m.group(2) if m else str(exc)))
    sql, src.meta_commands = _blank_meta_commands(text)
    stmts, inside = split(sql)
    if inside:
        last = text.rstrip().count("\n") + 1
        src.problems.append((last, 1, "syntax-error",
                             f"the file ends inside {inside}: migrate refuses it (truncated?)"))
    for i, st in enumerate(stmts):
        line_start = _offset_of_line(sql, st.line)
        start = sql.find(st.text, line_start)
        start = line_start if start < 0 else start
        line, column = src.line_of(start)
        node, error, at = parse_one(st.text)
        stmt = Statement(src, i, st.text, line, column, node, error)
        if error:
            src.problems.append((*stmt.at(at), "syntax-error", error))
        src.statements.append(stmt)
        src.starts.append(start)
        src.ends.append(start + len(st.text))
        if node is not None and kind(node) == "DoStmt":
            stmt.nested = list(_do_statements(stmt, node))
    src.comments = list(_comments(sql, src))
    if not src.transactional_directive and len(src.statements) != 1:
        src.problems.append((1, 1, "bad-directive", f"a '-- transactional: false' file holds exactly one statement, "
                                                 f"found {len(src.statements)}: migrate refuses it"))
    return src


def _offset_of_line(text: str, line: int) -> int:
    at = 0
    for _ in range(line - 1):
        nxt = text.find("\n", at)
        if nxt < 0:
            return len(text)
        at = nxt + 1
    return at


def _comments(sql: str, src: SourceFile) -> Iterator[Comment]:
    """`--` comments of the file, those inside DO bodies (dollar-quoted strings) included."""
    for kind_, s, e in lex(sql):
        if kind_ == "comment" and sql.startswith("--", s):
            line, column = src.line_of(s)
            yield Comment(s, line, column, sql[s:e])
        elif kind_ == "string" and sql.startswith("$", s):
            tag = sql[s:sql.index("$", s + 1) + 1]
            body_start, body = s + len(tag), sql[s + len(tag):e - len(tag)]
            for k2, s2, e2 in lex(body):
                if k2 == "comment" and body.startswith("--", s2):
                    line, column = src.line_of(body_start + s2)
                    yield Comment(body_start + s2, line, column, body[s2:e2])


# -- DO blocks ------------------------------------------------------------------------------------
def _do_statements(do: Statement, node: Node) -> Iterator[Statement]:
    """The SQL statements of a DO block's PL/pgSQL body (EXECUTE of a built string cannot be known)."""
    language, body = "plpgsql", None
    for arg in node.args:
        d = inner(arg)
        value = inner(d.arg)
        if d.defname == "language" and value is not None:
            language = value.sval.lower()
        elif d.defname == "as" and value is not None:
            body = value.sval
    if language != "plpgsql" or body is None:
        return
    body_offset = _body_location(do.text, body)
    if body_offset is None:
        return
    postgast = _postgast()
    tag = "$dbtool_lint$"
    try:
        funcs = postgast.parse_plpgsql(f"CREATE FUNCTION pg_temp.dbtool_lint() RETURNS void LANGUAGE plpgsql AS "
                                       f"{tag}{body}{tag}")
    except postgast.PgQueryError:
        return  # a body the server would refuse: the DO statement fails as a whole
    line_starts = [0] + [i + 1 for i, c in enumerate(body) if c == "\n"]
    search_from = 0
    for lineno, query in _execsql(funcs):
        start = line_starts[min(max(lineno, 1), len(line_starts)) - 1]
        at = body.find(query, max(start, search_from))
        at = start if at < 0 else at
        search_from = at + len(query)
        before = do.text[:body_offset + at]  # the DO statement's text up to the nested statement
        line = do.line + before.count("\n")
        column = do.column + len(before) if "\n" not in before else len(before) - before.rfind("\n")
        parsed, error, _ = parse_one(query)
        if parsed is not None:
            yield Statement(do.file, do.index, query, line, column, parsed, error, inside=do)


def _body_location(text: str, body: str) -> int | None:
    """Offset of a DO body's first character in the statement text (after its opening quote)."""
    for kind_, s, e in lex(text):
        if kind_ != "string":
            continue
        token = text[s:e]
        if token.startswith("$"):
            tag = token[:token.index("$", 1) + 1]
            if token[len(tag):len(token) - len(tag)] == body:
                return s + len(tag)
        elif token.startswith("'") and token[1:-1].replace("''", "'") == body:
            return s + 1
    return None


def _execsql(funcs: Any) -> Iterator[tuple[int, str]]:
    """(line in the body, SQL text) of every PLpgSQL_stmt_execsql, in the order they appear."""
    found: list[tuple[int, str]] = []

    def visit(value: Any, lineno: int) -> None:
        if isinstance(value, dict):
            lineno = value.get("lineno", lineno)
            execsql = value.get("PLpgSQL_stmt_execsql")
            if isinstance(execsql, dict):
                query = execsql.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query")
                if isinstance(query, str):
                    found.append((execsql.get("lineno", lineno), query))
                return
            for v in value.values():
                visit(v, lineno)
        elif isinstance(value, list):
            for v in value:
                visit(v, lineno)

    visit(funcs if not isinstance(funcs, str) else json.loads(funcs), 1)
    return iter(found)
