ALTER TABLE crm.contact_event DROP CONSTRAINT contact_event_pkey; -- expect: access-exclusive-held
ALTER TABLE crm.contact_event ADD CONSTRAINT contact_event_pkey PRIMARY KEY (id); -- expect: add-primary-key-without-index
