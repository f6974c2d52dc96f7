# Sourced by scripts/test and bench scripts: start throwaway test services on free loopback
# ports and stop them on exit. Each function exports the URL the test suite reads.
#   start_postgres  -> GLIMPSE_TEST_POSTGRES_URL (a PostgreSQL 15 cluster in a temp dir)
#   start_s3        -> GLIMPSE_TEST_S3_ENDPOINT  (Ceph radosgw on a one-OSD throwaway Ceph;
#                                                 access key and secret key both "test")
#   python_venv     -> GLIMPSE_VENV              (python-openstackclient)
# Everything started here is stopped by stop_services (installed as an EXIT trap).

GLIMPSE_VENV=${GLIMPSE_VENV:-$HOME/.cache/glimpse-venv}
_SERVICES_DIRS=()
_SERVICES_PIDS=()
_PG_DATA=""

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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

# A real S3 server: Ceph's radosgw (Debian packages radosgw, ceph-mon, ceph-osd) over a
# throwaway one-monitor, one-OSD Ceph cluster in a temp dir: no authentication between the
# daemons (loopback only), BlueStore on a sparse file, pools of one replica, and the waits
# that make a cluster start in seconds instead of tens of seconds turned down. The S3 user
# "test" has the access key and secret key "test".
start_s3() {
  local d pmon prgw fsid osd
  if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null; then
    echo "services: no radosgw/ceph-mon (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd)" >&2
    return 1
  fi
  d=$(mktemp -d /tmp/glimpse-rgw.XXXXXX)
  _SERVICES_DIRS+=("$d")
  mkdir -p "$d"/{mon,osd,run,rgw}
  pmon=$(free_port); prgw=$(free_port); fsid=$(cat /proc/sys/kernel/random/uuid)
  cat > "$d/ceph.conf" <<CONF
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
  local c=(-c "$d/ceph.conf")
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$pmon]" "$d/monmap" >/dev/null
  ceph-mon "${c[@]}" --mkfs -i a --monmap "$d/monmap"
  ceph-mon "${c[@]}" -i a -f >"$d/mon.out" 2>&1 &
  _SERVICES_PIDS+=($!)
  disown "$!"
  osd=$(cat /proc/sys/kernel/random/uuid)
  ceph "${c[@]}" osd new "$osd" >/dev/null
  ceph-osd "${c[@]}" -i 0 --mkfs --osd-uuid "$osd" >"$d/osd-mkfs.out" 2>&1
  ceph-osd "${c[@]}" -i 0 -f >"$d/osd.out" 2>&1 &
  _SERVICES_PIDS+=($!)
  disown "$!"
  radosgw "${c[@]}" -n client.rgw -f >"$d/rgw.out" 2>&1 &
  _SERVICES_PIDS+=($!)
  disown "$!"
  for _ in $(seq 1 600); do
    if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$prgw/', timeout=1)" 2>/dev/null; then
      radosgw-admin "${c[@]}" user create --uid=test --display-name=test \
        --access-key=test --secret-key=test >/dev/null
      export GLIMPSE_TEST_S3_ENDPOINT="http://127.0.0.1:$prgw"
      echo "services: S3 (Ceph radosgw) on 127.0.0.1:$prgw" >&2
      return 0
    fi
    python3 -c 'import time; time.sleep(0.1)'
  done
  echo "services: radosgw did not start (logs in $d)" >&2
  return 1
}

stop_services() {
  if [ -n "$_PG_DATA" ]; then
    "${_PG_RUN[@]}" "$_PG_CTL" -D "$_PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  # SIGKILL: everything started here is throwaway (a Ceph daemon takes seconds to stop).
  for pid in "${_SERVICES_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for d in "${_SERVICES_DIRS[@]}"; do rm -rf "$d"; done
}
