CREATE TABLE crm.country (
    code char(2) PRIMARY KEY, -- expect: prefer-text-over-char
    name text NOT NULL
);
