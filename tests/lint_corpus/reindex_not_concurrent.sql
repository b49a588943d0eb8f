REINDEX TABLE crm.customer; -- expect: reindex-not-concurrent
