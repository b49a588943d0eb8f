ALTER TABLE crm.order_line ADD CONSTRAINT order_line_quantity_positive CHECK (quantity > 0); -- expect: add-check-valid
