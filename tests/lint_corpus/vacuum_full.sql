-- transactional: false
VACUUM FULL crm.order_line; -- expect: vacuum-full, lock-timeout-disabled
