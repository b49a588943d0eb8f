CREATE TABLE crm.note (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title varchar(200) NOT NULL, -- expect: prefer-text
    body text
);
