# Sourced by scripts/test and bench scripts: start throwaway test services on free loopback
# ports and stop them on exit. Each function exports the URL the test suite reads.
#   start_postgres  -> GLIMPSE_TEST_POSTGRES_URL (a PostgreSQL 15 cluster in a temp dir)
#   start_s3        -> GLIMPSE_TEST_S3_ENDPOINT  (moto_server, an S3-compatible server)
#   python_venv     -> GLIMPSE_VENV              (moto, python-openstackclient, tempest)
# Everything started here is stopped by stop_services (installed as an EXIT trap).

GLIMPSE_VENV=${GLIMPSE_VENV:-$HOME/.cache/glimpse-venv}
_SERVICES_DIRS=()
_SERVICES_PIDS=()
_PG_DATA=""

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

python_venv() {
  if [ ! -x "$GLIMPSE_VENV/bin/moto_server" ] || [ ! -x "$GLIMPSE_VENV/bin/openstack" ]; then
    echo "services: creating $GLIMPSE_VENV (moto, python-openstackclient)" >&2
    python3 -m venv "$GLIMPSE_VENV"
    "$GLIMPSE_VENV/bin/pip" install -q --disable-pip-version-check \
      'moto[server]==5.2.5' 'python-openstackclient==10.5.0' >&2
  fi
  export GLIMPSE_VENV
  export GLIMPSE_OPENSTACK_CLI="$GLIMPSE_VENV/bin/openstack"
}

start_postgres() {
  local bindir
  bindir=$(pg_config --bindir 2>/dev/null || true)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "services: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    return 1
  fi
  local dir port run
  dir=$(mktemp -d /tmp/glimpse-pg.XXXXXX)
  _SERVICES_DIRS+=("$dir")
  port=$(free_port)
  run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >/dev/null
  _PG_DATA="$dir/data"
  _PG_RUN=("${run[@]}")
  _PG_CTL="$bindir/pg_ctl"
  export GLIMPSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port"
  echo "services: PostgreSQL on 127.0.0.1:$port" >&2
}

start_s3() {
  local moto="$GLIMPSE_VENV/bin/moto_server"
  [ -x "$moto" ] || moto=$(command -v moto_server || true)
  if [ -z "$moto" ]; then
    echo "services: no moto_server (python_venv installs it)" >&2
    return 1
  fi
  local port
  port=$(free_port)
  "$moto" -H 127.0.0.1 -p "$port" >/tmp/glimpse-moto-$port.log 2>&1 &
  _SERVICES_PIDS+=($!)
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
      export GLIMPSE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
      echo "services: S3 (moto) on 127.0.0.1:$port" >&2
      return 0
    fi
    python3 -c 'import time; time.sleep(0.1)'
  done
  echo "services: moto_server did not start" >&2
  return 1
}

stop_services() {
  if [ -n "$_PG_DATA" ]; then
    "${_PG_RUN[@]}" "$_PG_CTL" -D "$_PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  for pid in "${_SERVICES_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for d in "${_SERVICES_DIRS[@]}"; do rm -rf "$d"; done
}
