TRUNCATE crm.customer CASCADE; -- expect: truncate-cascade
