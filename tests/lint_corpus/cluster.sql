CLUSTER crm.order_line USING ix_orderline_customer_date; -- expect: cluster
