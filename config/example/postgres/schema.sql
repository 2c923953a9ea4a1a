-- An example application schema the policy in policies/app.toml maps onto.
-- dirsync does not run this: the application owns its schema.
CREATE TYPE account_state AS ENUM ('active', 'disabled');
CREATE TABLE app_users (
  id          bigserial,
  login       varchar(64) PRIMARY KEY,
  given_name  varchar(100),
  family_name varchar(100),
  email       varchar(254) NOT NULL,
  job_title   varchar(100),
  department  varchar(100),
  office      varchar(100),
  phone       varchar(40),
  state       account_state NOT NULL DEFAULT 'active',
  left_at     timestamptz,
  must_change boolean NOT NULL DEFAULT false,
  pw_hash     varchar(255),
  deleted_at  timestamptz,
  source      varchar(16)
);
CREATE TABLE app_user_groups (
  login varchar(64) NOT NULL,
  grp   varchar(64) NOT NULL,
  PRIMARY KEY (login, grp)
);
-- dirsync's account needs SELECT, INSERT, UPDATE (and DELETE unless
-- deleted_at_column is set) on both tables:
-- GRANT SELECT, INSERT, UPDATE, DELETE ON app_users, app_user_groups TO dirsync;
