"""`dbtool lint`: static, catalog-aware checks of migrations before anything runs (issue 14, part 1).

parse.py splits a file as migrate does and parses each statement (and each DO block's body) with
PostgreSQL's own grammar; context.py knows what exists and what the server says; checks.py follows a
migration statement by statement against rules.py, with locks.py (which locks each statement takes,
doing what) and nodes.py (reading the trees); ignores.py applies `-- dbtool: ignore` comments;
engine.py ties them together and report.py prints text, JSON, GitHub annotations or JUnit.

Why postgast (BSD-2-Clause) and not pglast (GPL-3.0-or-later), both evaluated on every file of sql/
(60 files, 492 statements: both parse all of them, pglast in 22 ms, postgast in 37 ms):

- Licence. pglast is GPL-3.0-or-later, and dbtool imports it at run time: shipping dbtool with it (a
  wheel, a container image, a vendored copy) would put dbtool under the GPL's terms, a decision for the
  project's owner, not a side effect of a linter. postgast is BSD-2-Clause; its vendored libpg_query
  is BSD-3-Clause and PostgreSQL's parser the PostgreSQL licence.
- Maturity. pglast is mature (v8, production/stable, among PyPI's 3,000 most downloaded); postgast is
  young (0.2.0, beta). We lean on it for little: `parse` and `parse_plpgsql` (libpg_query's own entry
  points) and `PgQueryError`. The tree is libpg_query's protobuf (pg_query.proto), not postgast's
  invention, and everything touching postgast is in parse.py: should it be abandoned, pglast's
  `parse_sql_protobuf` yields the same messages. The lock pins it by hash and pyproject to <0.3.
- API. postgast returns the protobuf messages (typed wrappers too); pglast returns its own AST classes
  and a printer we do not need. postgast's .pyi does not load under mypy (an enum member named None),
  so mypy skips the package and parse trees are `Any` in our code.
- Grammar. Both vendor libpg_query's PostgreSQL 18 grammar (postgast 0.2.0: 18.4, pglast 8.7: 18.6);
  no release of either offers the 15 grammar of our server. 18's accepts all of 15's, and lint
  reports the grammar next to the server's version, warning once when the majors differ (syntax only
  18 knows would parse here and fail on a 15 server).
"""

from .engine import Report, lint

__all__ = ["Report", "lint"]
