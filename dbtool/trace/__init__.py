"""`dbtool trace`: what a migration really does, measured on a scratch copy of the target (after Eugene).

copy.py    the scratch copy: the target's schema (pg_dump --schema-only) in a database on its server
rows.py    --rows N: generated rows in every table, parents first, constraints respected
run.py     what to run, in migrate's transaction shape, statement by statement
probe.py   after each statement: its locks (pg_locks), rewrites (relfilenode), constraints (pg_constraint)
report.py  text (a table per migration) and JSON (dbtool.trace/1)
"""
