CREATE TABLE IF NOT EXISTS customers (
  id int PRIMARY KEY,
  email text NOT NULL,
  name text,
  signed_up date
);
