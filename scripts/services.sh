#!/usr/bin/env bash
# Throwaway test services on free loopback ports. Two ways to use it:
#
# Sourced (scripts/test, scripts/tempest, bench/*): each function exports the URL the test
# suite reads, and stop_services (install it as an EXIT trap) stops everything started.
#   start_postgres [DIR] -> GLIMPSE_TEST_POSTGRES_URL (a PostgreSQL 15 cluster, in DIR or a temp dir)
#   start_s3 [DIR]       -> GLIMPSE_TEST_S3_ENDPOINT  (Ceph radosgw on a one-OSD throwaway Ceph,
#                                                      in DIR or a temp dir; access key and
#                                                      secret key both "test")
#   python_venv          -> GLIMPSE_VENV              (python-openstackclient)
#   wait_glimpse STDOUT PID [LOG]                       (until a `glimpse serve` is ready)
#   keystone_venv        -> GLIMPSE_KEYSTONE_VENV     (keystone and gunicorn, pinned; made
#                                                      only when missing or on other pins)
#   start_keystone [DIR [DATA]] -> GLIMPSE_TEST_KEYSTONE_URL (http://127.0.0.1:PORT/v3 of an
#                                                      upstream Keystone on SQLite and fernet
#                                                      tokens, served by gunicorn, in DIR or a
#                                                      temp dir), GLIMPSE_TEST_KEYSTONE_PASSWORD
#                                                      (user admin's, random; user and project
#                                                      "admin" in domain "default"),
#                                                      GLIMPSE_TEST_KEYSTONE_DIR (DIR). With DATA
#                                                      (another Keystone's DIR): its database and
#                                                      fernet/credential keys are shared, so
#                                                      users and tokens are common to both.
#                                                      Tokens last GLIMPSE_KEYSTONE_TOKEN_SECONDS
#                                                      (3600 unless set).
#
# As a command, for a test that needs servers of its own to stop and start again on the same
# port and data (tests/process/backend_restarts.rs), or a Keystone of its own (to stop, or with
# short tokens). DIR holds the data, ports and pids (DIR/postgres, DIR/s3, DIR/keystone); a
# start prints the URL on stdout; `stop` stops all and removes DIR.
#   scripts/services.sh start-postgres DIR    # again on an existing DIR: same port and data
#   scripts/services.sh stop-postgres DIR     # pg_ctl stop -m immediate (no checkpoint)
#   scripts/services.sh restart-postgres DIR  # stop -m immediate, then start
#   scripts/services.sh start-s3 DIR          # again: starts whichever daemon is not running
#   scripts/services.sh stop-s3 DIR           # kill -9 of radosgw and the OSD (the monitor stays)
#   scripts/services.sh restart-s3 DIR        # stop-s3, then start-s3
#   scripts/services.sh start-keystone DIR    # start_keystone; with GLIMPSE_TEST_KEYSTONE_DIR
#                                             # set, shares that Keystone's database and keys
#                                             # (own port, own token lifetime); again on an
#                                             # existing DIR: same port and data
#   scripts/services.sh stop-keystone DIR     # SIGTERM to gunicorn, waits until the port closes
#   scripts/services.sh stop DIR
# Exit status 2: the server binaries are not installed (the message says which package).

GLIMPSE_VENV=${GLIMPSE_VENV:-$HOME/.cache/glimpse-venv}
GLIMPSE_KEYSTONE_VENV=${GLIMPSE_KEYSTONE_VENV:-$HOME/.cache/keystone-venv}
_KEYSTONE_PINS=(keystone==30.0.0 gunicorn==27.0.1)
_SERVICES_DIRS=()  # temp dirs, removed by stop_services
_SERVICES_PG=()    # PostgreSQL dirs, stopped by stop_services
_SERVICES_S3=()    # Ceph dirs, their daemons killed by stop_services
_SERVICES_KS=()    # Keystone dirs, their gunicorn stopped by stop_services
# PostgreSQL's synchronous_commit: off for the suite's shared server (speed; it is never
# restarted), on for the servers a test restarts (see _services_main).
_PG_SYNCHRONOUS_COMMIT=off

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until the `glimpse serve` whose stdout is the file STDOUT and pid PID prints
# "ready in"; if it exits first or takes 20 s, prints LOG (its stderr) and fails.
wait_glimpse() {
  local out=$1 pid=$2 log=${3:-}
  for _ in $(seq 1 400); do
    grep -q '^ready in' "$out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    python3 -c 'import time; time.sleep(0.05)'
  done
  echo "glimpse ($out) did not start" >&2
  [ -z "$log" ] || cat "$log" >&2
  return 1
}

python_venv() {
  if [ ! -x "$GLIMPSE_VENV/bin/openstack" ]; then
    echo "services: creating $GLIMPSE_VENV (python-openstackclient)" >&2
    python3 -m venv "$GLIMPSE_VENV"
    "$GLIMPSE_VENV/bin/pip" install -q --disable-pip-version-check \
      'python-openstackclient==10.5.0' >&2
  fi
  export GLIMPSE_VENV
  export GLIMPSE_OPENSTACK_CLI="$GLIMPSE_VENV/bin/openstack"
}

# Keystone and gunicorn at _KEYSTONE_PINS in GLIMPSE_KEYSTONE_VENV, installed when missing or
# pinned otherwise (the pins go to a stamp file last, so a half-made venv is made again). A lock
# keeps parallel callers from installing it twice.
keystone_venv() {
  local v=$GLIMPSE_KEYSTONE_VENV pins="${_KEYSTONE_PINS[*]}"
  if [ "$(cat "$v/glimpse-pins" 2>/dev/null)" != "$pins" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      echo "services: python3 cannot make a venv (apt-get install python3-venv)" >&2
      return 2
    fi
    mkdir -p "$(dirname "$v")"
    (
      flock 9
      if [ "$(cat "$v/glimpse-pins" 2>/dev/null)" != "$pins" ]; then
        echo "services: installing $pins in $v" >&2
        python3 -m venv "$v" &&
          "$v/bin/pip" install -q --disable-pip-version-check "${_KEYSTONE_PINS[@]}" >&2 &&
          echo "$pins" >"$v/glimpse-pins"
      fi
    ) 9>"$v.lock" || return
  fi
  export GLIMPSE_KEYSTONE_VENV
}

# The PostgreSQL server binaries' directory on stdout, or status 2.
_pg_bindir() {
  local bindir
  bindir=$(pg_config --bindir 2>/dev/null || true)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "services: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    return 2
  fi
  echo "$bindir"
}

# pg_ctl on the cluster in $1 (as the postgres user when root), with the rest of the arguments.
_pg_ctl() {
  local dir=$1 run=()
  shift
  # shellcheck disable=SC1091
  . "$dir/postgres.env"
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$PG_BINDIR/pg_ctl" -D "$dir/data" "$@"
}

# A PostgreSQL cluster in DIR (a new temp dir without one): made and given a free port the first
# time, started (again) on that port and data otherwise.
start_postgres() {
  local dir=${1:-} bindir port run=()
  bindir=$(_pg_bindir) || return
  if [ -z "$dir" ]; then
    dir=$(mktemp -d /tmp/glimpse-pg.XXXXXX)
    _SERVICES_DIRS+=("$dir")
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  if [ ! -f "$dir/postgres.env" ]; then
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    "${run[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
    printf 'PG_BINDIR=%q\nPG_PORT=%q\n' "$bindir" "$(free_port)" >"$dir/postgres.env"
  fi
  # shellcheck disable=SC1091
  . "$dir/postgres.env"
  port=$PG_PORT
  _SERVICES_PG+=("$dir")
  _pg_ctl "$dir" -l "$dir/server.log" -w start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=$_PG_SYNCHRONOUS_COMMIT -c full_page_writes=off -c max_connections=400" >/dev/null
  export GLIMPSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port"
  echo "services: PostgreSQL on 127.0.0.1:$port" >&2
}

# An immediate stop (every connection cut, no checkpoint: the next start recovers from the WAL).
stop_postgres() {
  [ -f "$1/postgres.env" ] || return 0
  _pg_ctl "$1" -m immediate -w stop >/dev/null 2>&1 || true
}

# A real S3 server: Ceph's radosgw (Debian packages radosgw, ceph-mon, ceph-osd) over a
# throwaway one-monitor, one-OSD Ceph cluster in DIR (a new temp dir without one): no
# authentication between the daemons (loopback only), BlueStore on a sparse file, pools of one
# replica, and the waits that make a cluster start in seconds instead of tens of seconds turned
# down. The S3 user "test" has the access key and secret key "test". On a DIR that already
# holds the cluster, starts whichever of its daemons is not running, on the same ports.
start_s3() {
  local d=${1:-} pmon prgw fsid osd first=""
  if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null; then
    echo "services: no radosgw/ceph-mon (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd)" >&2
    return 2
  fi
  if [ -z "$d" ]; then
    d=$(mktemp -d /tmp/glimpse-rgw.XXXXXX)
    _SERVICES_DIRS+=("$d")
  fi
  _SERVICES_S3+=("$d")
  local c=(-c "$d/ceph.conf")
  if [ ! -f "$d/ceph.conf" ]; then
    first=1
    mkdir -p "$d"/{mon,osd,run,rgw}
    pmon=$(free_port); prgw=$(free_port); fsid=$(cat /proc/sys/kernel/random/uuid)
    cat > "$d/ceph.conf.new" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$pmon]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# radosgw asks for "secure" monitor sessions by default, which auth "none" cannot give
ms mon client mode = crc secure
run dir = $d/run
admin socket = $d/run/\$name.asok
log file = $d/\$name.log
mon data = $d/mon
osd data = $d/osd
osd objectstore = bluestore
bluestore block path = $d/osd.block
bluestore block create = true
bluestore block size = 21474836480
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
# start in seconds: monitor commits and client retries without the 1 s and 5 s default waits
paxos propose interval = 0.01
paxos min wait = 0.001
objecter tick interval = 0.2
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$prgw
rgw data = $d/rgw
CONF
    mv "$d/ceph.conf.new" "$d/ceph.conf"
    echo "S3_PORT=$prgw" >"$d/s3.env"
    monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$pmon]" "$d/monmap" >/dev/null
    ceph-mon "${c[@]}" --mkfs -i a --monmap "$d/monmap"
  fi
  # shellcheck disable=SC1091
  . "$d/s3.env"
  prgw=$S3_PORT
  _daemon "$d" mon ceph-mon "${c[@]}" -i a -f
  if [ ! -f "$d/osd/whoami" ]; then
    osd=$(cat /proc/sys/kernel/random/uuid)
    ceph "${c[@]}" osd new "$osd" >/dev/null
    ceph-osd "${c[@]}" -i 0 --mkfs --osd-uuid "$osd" >"$d/osd-mkfs.out" 2>&1
  fi
  _daemon "$d" osd ceph-osd "${c[@]}" -i 0 -f
  _daemon "$d" rgw radosgw "${c[@]}" -n client.rgw -f
  for _ in $(seq 1 600); do
    if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$prgw/', timeout=1)" 2>/dev/null; then
      if [ -n "$first" ]; then
        radosgw-admin "${c[@]}" user create --uid=test --display-name=test \
          --access-key=test --secret-key=test >/dev/null
      fi
      export GLIMPSE_TEST_S3_ENDPOINT="http://127.0.0.1:$prgw"
      echo "services: S3 (Ceph radosgw) on 127.0.0.1:$prgw" >&2
      return 0
    fi
    sleep 0.1
  done
  echo "services: radosgw did not start (logs in $d)" >&2
  return 1
}

# Whether process $1 runs (a zombie, killed but not yet reaped, does not).
_running() {
  local state
  state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Starts the daemon NAME of the Ceph cluster or Keystone in DIR (the command follows) unless
# its pid file names a live process; the pid goes to DIR/NAME.pid, its output to DIR/NAME.out.
_daemon() {
  local d=$1 name=$2
  shift 2
  if [ -f "$d/$name.pid" ] && _running "$(cat "$d/$name.pid")"; then
    return 0
  fi
  "$@" >>"$d/$name.out" 2>&1 </dev/null &
  echo "$!" >"$d/$name.pid"
  disown "$!"
}

# kill -9 of the named daemons (mon, osd, rgw) of the Ceph cluster in DIR; waits until they are
# gone, so that a start right after binds their ports again.
kill_s3() {
  local d=$1 name pid
  shift
  for name in "$@"; do
    [ -f "$d/$name.pid" ] || continue
    pid=$(cat "$d/$name.pid")
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      _running "$pid" || break
      sleep 0.05
    done
    rm -f "$d/$name.pid"
  done
}

# Whether something listens on 127.0.0.1:PORT.
_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# An upstream Keystone (SQLite, fernet tokens) served by gunicorn from keystone_venv, in DIR (a
# new temp dir without one): made the first time (a free port, db_sync, the fernet and
# credential key repositories, bootstrap with a random admin password in DIR/admin-password),
# started again on the same port and data otherwise. With DATA, the DIR of another Keystone made
# here, it makes no database or keys of its own and serves DATA's: a second server of the same
# identity service. keystone.conf is written at every start, with tokens lasting
# GLIMPSE_KEYSTONE_TOKEN_SECONDS (3600 unless set) and the policy overrides of
# GLIMPSE_KEYSTONE_POLICY (YAML) if set. Log: DIR/keystone.out.
start_keystone() {
  local d=${1:-} data=${2:-} v url
  keystone_venv || return
  v=$GLIMPSE_KEYSTONE_VENV
  if [ -z "$d" ]; then
    d=$(mktemp -d /tmp/glimpse-ks.XXXXXX)
    _SERVICES_DIRS+=("$d")
  fi
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  _SERVICES_KS+=("$d")
  if [ ! -f "$d/keystone.env" ]; then
    if [ -n "$data" ]; then
      # The dir that holds the database and keys (DATA may itself share another's).
      # shellcheck disable=SC1091
      data=$(. "$data/keystone.env" && echo "$KS_DATA") || {
        echo "services: $2 is not a Keystone made by start_keystone" >&2
        return 1
      }
    else
      data=$d
    fi
    printf 'KS_PORT=%q\nKS_DATA=%q\n' "$(free_port)" "$data" >"$d/keystone.env.new"
  else
    cp "$d/keystone.env" "$d/keystone.env.new"
  fi
  # shellcheck disable=SC1091
  . "$d/keystone.env.new"
  url="http://127.0.0.1:$KS_PORT/v3"
  cat >"$d/keystone.conf" <<CONF
[DEFAULT]
log_dir =
use_stderr = true
[database]
connection = sqlite:///$KS_DATA/keystone.db
[token]
provider = fernet
expiration = ${GLIMPSE_KEYSTONE_TOKEN_SECONDS:-3600}
[fernet_tokens]
key_repository = $KS_DATA/fernet-keys
[fernet_receipts]
key_repository = $KS_DATA/fernet-receipts
[credential]
key_repository = $KS_DATA/credential-keys
CONF
  # GLIMPSE_KEYSTONE_POLICY: policy overrides (YAML) for this server, e.g. a stricter
  # identity:validate_token.
  if [ -n "${GLIMPSE_KEYSTONE_POLICY:-}" ]; then
    printf '%s\n' "$GLIMPSE_KEYSTONE_POLICY" >"$d/policy.yaml"
    printf '[oslo_policy]\npolicy_file = %s\n' "$d/policy.yaml" >>"$d/keystone.conf"
  fi
  # Keystone's oslo.config parses sys.argv: gunicorn's arguments must not reach it.
  cat >"$d/keystone_wsgi.py" <<'PY'
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
PY
  if [ ! -f "$d/keystone.env" ] && [ "$KS_DATA" = "$d" ]; then
    _keystone_setup "$d" "$url" || return
  fi
  mv "$d/keystone.env.new" "$d/keystone.env"
  # One sync worker: Keystone's SQLite answers "database is locked" (a 500) when two of its
  # connections both turn a read into a write (a user update beside another), so one server
  # writes one request at a time; the servers sharing its database (start-keystone) only
  # issue and validate tokens, which read.
  _daemon "$d" keystone env OS_KEYSTONE_CONFIG_FILES="$d/keystone.conf" \
    "$v/bin/gunicorn" --bind "127.0.0.1:$KS_PORT" --workers 1 --no-control-socket \
    --graceful-timeout 5 --chdir "$d" keystone_wsgi:application
  for _ in $(seq 1 600); do
    if python3 -c "import json, urllib.request as u
assert json.load(u.urlopen('$url', timeout=1))['version']['id'].startswith('v3')" 2>/dev/null; then
      export GLIMPSE_TEST_KEYSTONE_URL=$url
      GLIMPSE_TEST_KEYSTONE_PASSWORD=$(cat "$KS_DATA/admin-password")
      export GLIMPSE_TEST_KEYSTONE_PASSWORD
      export GLIMPSE_TEST_KEYSTONE_DIR=$d
      echo "services: Keystone on 127.0.0.1:$KS_PORT" >&2
      return 0
    fi
    _running "$(cat "$d/keystone.pid")" || break
    sleep 0.1
  done
  echo "services: Keystone did not start (log: $d/keystone.out)" >&2
  tail -n 20 "$d/keystone.out" >&2
  return 1
}

# The first start of a Keystone with data of its own in DIR (its keystone.conf written): the
# database, key repositories and bootstrap (roles admin, manager, member, reader, service; user
# and project admin in domain default; the identity endpoint URL in region-one). Each
# keystone-manage takes ~2 s, mostly imports: the key repositories are made beside db_sync.
_keystone_setup() {
  local d=$1 url=$2 m owner f c ok=1
  m=(env OS_KEYSTONE_CONFIG_FILES="$d/keystone.conf"
    "$GLIMPSE_KEYSTONE_VENV/bin/keystone-manage" --config-file "$d/keystone.conf")
  owner=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)")
  python3 -c 'import secrets; print(secrets.token_hex(16))' >"$d/admin-password"
  {
    "${m[@]}" fernet_setup "${owner[@]}" &
    f=$!
    "${m[@]}" credential_setup "${owner[@]}" &
    c=$!
    "${m[@]}" db_sync || ok=
    wait "$f" || ok=
    wait "$c" || ok=
    [ -n "$ok" ] && "${m[@]}" bootstrap --bootstrap-password "$(cat "$d/admin-password")" \
      --bootstrap-public-url "$url" --bootstrap-region-id region-one || ok=
  } >>"$d/keystone-manage.out" 2>&1 </dev/null
  if [ -z "$ok" ]; then
    echo "services: keystone-manage failed (log: $d/keystone-manage.out)" >&2
    tail -n 20 "$d/keystone-manage.out" >&2
    return 1
  fi
}

# SIGTERM to the gunicorn of the Keystone in DIR (it stops its workers); waits until it is gone
# and its port closed, so that a start right after binds it again.
stop_keystone() {
  local d=$1 pid
  [ -f "$d/keystone.pid" ] || return 0
  pid=$(cat "$d/keystone.pid")
  # shellcheck disable=SC1091
  . "$d/keystone.env"
  kill "$pid" 2>/dev/null || true
  # gunicorn waits at most --graceful-timeout (5 s) for its workers' requests.
  for _ in $(seq 1 200); do
    if ! _running "$pid" && ! _port_open "$KS_PORT"; then
      break
    fi
    sleep 0.1
  done
  rm -f "$d/keystone.pid"
}

stop_services() {
  local d
  for d in "${_SERVICES_KS[@]}"; do stop_keystone "$d"; done
  for d in "${_SERVICES_PG[@]}"; do stop_postgres "$d"; done
  # SIGKILL: everything started here is throwaway (a Ceph daemon takes seconds to stop).
  for d in "${_SERVICES_S3[@]}"; do kill_s3 "$d" rgw osd mon; done
  for d in "${_SERVICES_DIRS[@]}"; do rm -rf "$d"; done
}

# The command form (see the top of this file); not run when the file is sourced.
_services_main() {
  set -euo pipefail
  local usage="usage: $0 start-postgres|stop-postgres|restart-postgres|start-s3|stop-s3|restart-s3|start-keystone|stop-keystone|stop DIR"
  if [ $# -ne 2 ]; then
    echo "$usage" >&2
    exit 64
  fi
  local dir=$2
  # A server that a test stops with -m immediate must keep every commit it acknowledged: with
  # synchronous_commit off it loses the last ones (they wait in WAL buffers for the WAL writer).
  # fsync stays off: the killed server's writes are in the page cache, only a machine crash
  # would lose them.
  _PG_SYNCHRONOUS_COMMIT=on
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  case $1 in
    start-postgres)
      start_postgres "$dir/postgres"
      echo "$GLIMPSE_TEST_POSTGRES_URL" ;;
    stop-postgres) stop_postgres "$dir/postgres" ;;
    restart-postgres)
      stop_postgres "$dir/postgres"
      start_postgres "$dir/postgres"
      echo "$GLIMPSE_TEST_POSTGRES_URL" ;;
    start-s3)
      start_s3 "$dir/s3"
      echo "$GLIMPSE_TEST_S3_ENDPOINT" ;;
    stop-s3) kill_s3 "$dir/s3" rgw osd ;;
    start-keystone)
      start_keystone "$dir/keystone" "${GLIMPSE_TEST_KEYSTONE_DIR:-}"
      echo "$GLIMPSE_TEST_KEYSTONE_URL" ;;
    stop-keystone) stop_keystone "$dir/keystone" ;;
    restart-s3)
      kill_s3 "$dir/s3" rgw osd
      start_s3 "$dir/s3"
      echo "$GLIMPSE_TEST_S3_ENDPOINT" ;;
    stop)
      stop_postgres "$dir/postgres"
      stop_keystone "$dir/keystone"
      [ -d "$dir/s3" ] && kill_s3 "$dir/s3" rgw osd mon
      rm -rf "$dir" ;;
    *)
      echo "$usage" >&2
      exit 64 ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  _services_main "$@"
fi
