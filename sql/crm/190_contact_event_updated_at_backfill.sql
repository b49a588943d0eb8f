-- Issue 14, part 3: crm.contact_event.updated_at of the rows that existed before the column (170) is their
-- created_at. In batches of 5,000 rows (`-- batch:`), each batch a transaction of its own, with its own
-- lock_timeout and statement_timeout: a row the application holds locked delays one batch at most 5s, and a
-- batch that gives up (or a run killed meanwhile) loses only itself: the next run goes on with the rows still
-- NULL. Under psql the batch size is unset (NULL, or '' once set and gone), LIMIT NULL is no limit, and one
-- statement fills every row.
-- batch: 5000
-- lock_timeout: 5s
-- statement_timeout: 1min

UPDATE crm.contact_event SET updated_at = created_at
WHERE id IN (SELECT id FROM crm.contact_event WHERE updated_at IS NULL
             LIMIT nullif(current_setting('dbtool.batch_rows', true), '')::integer);
