-- Runs once, when the PostgreSQL data volume is first initialised (docker-entrypoint-initdb.d):
-- one database per service, owned by the cluster's user (POSTGRES_USER).
CREATE DATABASE intake;
CREATE DATABASE payout;
CREATE DATABASE reporting;
