ALTER TABLE crm.audit_item RENAME TO audit_items; -- expect: rename-table
