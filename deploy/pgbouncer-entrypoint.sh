#!/bin/sh
# Writes pgbouncer.ini from the environment, then runs pgbouncer in the foreground. The workers
# reach it on the compose network only; it reaches PostgreSQL with the database's password.
set -eu
: "${POSTGRES_PASSWORD:?}" "${PGBOUNCER_POOL_SIZE:=20}"
config=/tmp/pgbouncer.ini
cat > "$config" <<INI
[databases]
hype = host=db port=5432 dbname=hype user=hype password=${POSTGRES_PASSWORD}
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = trust
auth_file = /tmp/userlist.txt
pool_mode = session
default_pool_size = ${PGBOUNCER_POOL_SIZE}
max_client_conn = 10000
ignore_startup_parameters = extra_float_digits,options
log_connections = 0
log_disconnections = 0
INI
printf '"hype" ""\n' > /tmp/userlist.txt
exec pgbouncer "$config"
