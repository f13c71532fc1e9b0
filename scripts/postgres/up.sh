#!/usr/bin/env bash
# Starts Debian's PostgreSQL for the store tests and makes the role they use. Prints the DSN to export as
# WUTONG_TEST_POSTGRES. Idempotent; needs root. Each test creates (and drops) its own database with this role.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $2}')
if [ -z "$ver" ]; then
	echo "no PostgreSQL cluster: run pg_createcluster" >&2
	exit 1
fi
if ! pg_lsclusters -h | awk 'NR==1 {print $4}' | grep -q online; then
	pg_ctlcluster "$ver" "$cluster" start >&2
fi
port=$(pg_lsclusters -h | awk 'NR==1 {print $3}')
# Loopback only (Debian's default listen_addresses is localhost); a password role that may create databases.
runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wutong_test') THEN
    CREATE ROLE wutong_test LOGIN CREATEDB PASSWORD 'wutong_test';
  END IF;
END \$\$;
SQL
echo "postgres://wutong_test:wutong_test@127.0.0.1:${port}/postgres?sslmode=disable"
