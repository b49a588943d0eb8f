-- transactional: false
REINDEX INDEX CONCURRENTLY crm.ix_customer_email;
