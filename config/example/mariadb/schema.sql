-- An example application schema the policy in policies/app.toml maps onto.
-- dirsync does not run this: the application owns its schema.
CREATE TABLE app_users (
  login       varchar(64) PRIMARY KEY,
  given_name  varchar(100),
  family_name varchar(100),
  email       varchar(254) NOT NULL,
  job_title   varchar(100),
  department  varchar(100),
  office      varchar(100),
  phone       varchar(40),
  state       enum('active', 'disabled') NOT NULL DEFAULT 'active',
  left_at     datetime NULL,
  must_change tinyint(1) NOT NULL DEFAULT 0,
  pw_hash     varchar(255),
  deleted_at  datetime NULL,
  source      varchar(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE app_user_groups (
  login varchar(64) NOT NULL,
  grp   varchar(64) NOT NULL,
  PRIMARY KEY (login, grp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- GRANT SELECT, INSERT, UPDATE, DELETE ON app.app_users TO 'dirsync'@'%';
-- GRANT SELECT, INSERT, UPDATE, DELETE ON app.app_user_groups TO 'dirsync'@'%';
