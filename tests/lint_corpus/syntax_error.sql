CREATE INDEX ON crm.customer (email) WHERE; -- expect: syntax-error
