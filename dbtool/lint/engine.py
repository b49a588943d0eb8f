"""lint end to end: which files, in which migrations, against which catalog; findings per file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import paths
from ..errors import UsageError
from . import context as ctxlib
from . import ignores, parse
from .checks import Finding, Run
from .parse import SourceFile, kind

Say = Callable[[str], None]
SYSTEM = {"pg_catalog", "information_schema", "pg_temp", "pg_toast"}


@dataclass
class FileReport:
    path: Path
    shown: str
    migration: str | None
    transactional: bool
    lock_timeout: str
    statement_timeout: str
    statements: int

    def as_dict(self) -> dict:
        return {"file": self.shown, "migration": self.migration, "transactional": self.transactional,
                "lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout,
                "statements": self.statements}


@dataclass
class Report:
    files: list[FileReport]
    findings: list[Finding]
    waived: list[Finding]
    rules: list[str]
    parser: str
    grammar: int
    catalog: str
    database: str | None = None
    server_version: int | None = None
    volatility: str = "conservative"
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.root()))
    except (ValueError, UsageError):
        return str(path)


def expand(given: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to lint: each file as given, each folder's *.sql below it, without sql/'s non-module folders
    (DuckDB's schema, the seed scripts) unless named themselves."""
    files, notes, seen = [], [], set()
    try:
        skip = {(paths.sql_dir() / d).resolve() for d in paths.NON_MODULE_DIRS}
    except UsageError:
        skip = set()
    for g in given:
        if g.is_dir():
            found = sorted(f for f in g.rglob("*.sql") if f.is_file())
            skipped = sorted({d for f in found for d in skip if d in f.resolve().parents and d != g.resolve()})
            found = [f for f in found if not any(d in f.resolve().parents for d in skipped)]
            if skipped:
                notes.append(f"skipped {', '.join(shown(d) + '/' for d in skipped)}: not PostgreSQL migrations "
                             "(DuckDB's schema, psql seed scripts); name a file to lint it anyway")
        elif g.is_file():
            found = [g]
        elif g.exists():  # a FIFO, socket or device: reading it could wait forever
            raise UsageError(f"{g}: not a regular file")
        else:
            raise UsageError(f"{g}: no such file or folder")
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                files.append(f)
    return files, notes


def pending_files(target, modules: list[str], say: Say) -> list[Path]:
    """The files of the migrations not yet applied on the target, in apply order."""
    from .. import migrate as migrate_lib

    states = migrate_lib.status(target, modules)
    todo = {s.id for s in states if not s.applied}
    files = [f for m in migrate_lib.load(modules) if m.id in todo for f in migrate_lib.files_of(m)]
    say(f"lint: {len(todo)} pending migration(s), {len(files)} file(s)")
    return files


def lint(given: list[Path], *, enabled: set[str], target=None, pending: bool = False,
         modules: list[str] | None = None, say: Say = lambda _m: None) -> Report:
    started = time.perf_counter()
    modules = modules if modules is not None else ctxlib.default_modules()
    files, notes = expand(given)
    if pending:
        files += [f for f in pending_files(target, modules, say) if f.resolve() not in {x.resolve() for x in files}]
    if not files and not pending:
        raise UsageError("nothing to lint: give .sql files or folders, or --pending")
    placements = ctxlib.placements(ctxlib.default_modules())
    requested = {f.resolve(): i for i, f in enumerate(files)}

    # Whole migrations are read (a file's context is what ran before it in its transaction); findings are
    # kept for the requested files only.
    groups: list[tuple[ctxlib.Placement, list[Path]]] = []
    by_migration: dict[str, int] = {}
    for f in files:
        place = placements.get(f.resolve())
        if place is None:
            groups.append((ctxlib.Placement(None, None, (f.resolve(),), True), [f.resolve()]))
        elif place.migration not in by_migration:
            by_migration[place.migration or ""] = len(groups)
            groups.append((place, list(place.files)))
    order = {p.migration: i for i, p in enumerate(dict.fromkeys(placements.values()))}
    groups.sort(key=lambda g: (order.get(g[0].migration, len(order)) if g[0].migration else len(order),
                               min(requested.get(f, 10**9) for f in g[1])))

    sources: dict[Path, SourceFile] = {}
    for place, members in groups:
        for f in members:
            if f in sources:
                continue
            if not f.is_file():
                notes.append(f"{shown(f)} (of migration {place.migration}) is missing: skipped")
                continue
            try:
                sources[f] = parse.read(f, shown(f))
            except OSError as exc:
                raise UsageError(f"{shown(f)}: cannot read: {exc.strerror}") from None

    ctx = _context(target, modules, sources, notes, say)
    found: list[Finding] = []
    file_reports: dict[Path, FileReport] = {}
    runs: list[Run] = []
    for place, members in groups:
        transactional = place.transactional if place.migration else all(
            sources[f].transactional_directive for f in members if f in sources)
        run = Run(ctx, place.migration, transactional, enabled, found.append)
        for f in members:
            src = sources.get(f)
            if src is None:
                continue
            _file_problems(src, place, transactional, found)
            if src.meta_commands and not place.migration and f in requested:
                notes.append(f"{src.shown}: {len(src.meta_commands)} psql meta-command(s) skipped (it is no "
                             "migration's file: psql runs it)")
            run.start_file(src)
            for stmt in src.all_statements():
                run.statement(stmt)
            run.end_file()
            if f in requested:
                file_reports[f] = FileReport(f, src.shown, place.migration, transactional,
                                             run.file_lock_timeout_of(src),
                                             src.directives.get("statement_timeout", ctx.statement_timeout),
                                             len(src.statements))
        run.end()
        runs.append(run)
    for i, run in enumerate(runs):
        run.judge_foreign_keys([x for later in runs[i + 1:] for x in later.built()])

    standing, waived = [], []
    for f, src in sources.items():
        if f not in requested:
            continue
        mine = [x for x in found if x.path == f]
        keep, gone = ignores.apply(src, mine, enabled)
        standing += keep
        waived += gone
    rank = {f: i for f, i in requested.items()}

    def key(x: Finding) -> tuple:
        return rank.get(x.path, 0), x.line, x.column, x.rule

    report = Report(sorted(file_reports.values(), key=lambda r: rank[r.path]), sorted(standing, key=key),
                    sorted(waived, key=key), sorted(enabled), parse.parser_description(), parse.grammar_version(),
                    ctx.source, ctx.database, ctx.server.version if ctx.server else None,
                    "pg_proc, pg_cast" if ctx.server else "conservative", notes=notes + ctx.notes)
    if ctx.server and ctx.server.version // 10000 != parse.grammar_major():
        report.warnings.append(f"the parser knows PostgreSQL {parse.grammar_major()}'s grammar, the server runs "
                               f"PostgreSQL {ctx.server.version // 10000}: syntax newer than the server's parses "
                               "here and fails there")
    if ctx.server:
        ctx.server.conn.close()
    report.seconds = time.perf_counter() - started
    return report


def _file_problems(src: SourceFile, place: ctxlib.Placement, transactional: bool, out: list[Finding]) -> None:
    for line, column, rule, message in src.problems:
        out.append(Finding(src.path, src.shown, line, column, rule, message, None))
    if place.migration:
        for line, text in src.meta_commands:
            out.append(Finding(src.path, src.shown, line, 1, "psql-meta-command",
                               f"`{text}` is psql's, not SQL: migration {place.migration} sends this file's "
                               "statements to the server, which refuses it", None))
        if not src.transactional_directive and transactional:  # migrate refuses it
            out.append(Finding(src.path, src.shown, 1, 1, "bad-directive",
                               f"marked `-- transactional: false`, but migration {place.migration} runs in a "
                               "transaction: set `__transactional__ = False` in it (migrate refuses it)", None))


def _schemas_of(sources: dict[Path, SourceFile]) -> set[str]:
    out = set()
    for src in sources.values():
        for stmt in src.all_statements():
            if stmt.node is None:
                continue
            for n in parse.walk(stmt.node):
                if kind(n) == "RangeVar" and n.schemaname:
                    out.add(n.schemaname)
    return out - SYSTEM


def _context(target, modules: list[str], sources: dict[Path, SourceFile], notes: list[str],
             say: Say) -> ctxlib.Context:
    if target is None:
        ctx = ctxlib.Context(ctxlib.snapshot_catalog(modules), "the committed snapshot of sql/ "
                             "(dbtool/catalog/snapshots): no row counts", schemas=set(modules))
        ctx.notes.append("no database given: existing tables come from the committed snapshot; a default calling a "
                         "function that is not a module function counts as volatile, and a change to another type as "
                         "a rewrite (give --database-url to judge both from the server's pg_proc and pg_cast)")
        return ctx
    from ..lock import application_name

    schemas = sorted(set(modules) | _schemas_of(sources))
    conn = target.connect(application_name=application_name("lint"), autocommit=True)
    try:
        catalog, rows = ctxlib.live(conn, schemas, say)
    except BaseException:
        conn.close()
        raise
    return ctxlib.Context(catalog, f"the live catalog of {target.display()}, with pg_class.reltuples row estimates",
                          schemas=set(schemas), database=target.display(), server=ctxlib.Server(conn), rows=rows)

