DROP TABLE crm.audit_item; -- expect: drop-table
