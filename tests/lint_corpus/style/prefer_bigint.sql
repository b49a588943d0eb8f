CREATE TABLE crm.tag (
    id serial PRIMARY KEY, -- expect: prefer-bigint
    label text NOT NULL,
    weight integer NOT NULL DEFAULT 1
);
CREATE TABLE crm.tag_group (
    id integer GENERATED ALWAYS AS IDENTITY, -- expect: prefer-bigint
    code smallint NOT NULL, -- expect: prefer-bigint
    PRIMARY KEY (code)
);
