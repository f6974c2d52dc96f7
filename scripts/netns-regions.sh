#!/usr/bin/env bash
# Regions on separate hosts, on one machine: identity, region-one and region-two each in its
# own Linux network namespace, the link between the two regions shaped by `tc` (tbf) to a
# fixed rate (default 200 Mbit/s). Run as root (needs iproute2: `ip`, `tc`).
#
#   scripts/netns-regions.sh up DIR     # makes the namespaces, writes DIR/netns.env
#   scripts/netns-regions.sh down DIR   # deletes what DIR/netns.env names
#
# `up` honours RATE (tc rate, default 200mbit), BURST (default 256kb) and LATENCY (default
# 50ms). Every name carries a random suffix (gl-<6 hex>-id, -r1, -r2; root-side links
# gl<6 hex>i/1/2) and every address is in a /24 of 10.0.0.0/8 that no route of this machine
# touches, chosen under a lock, so parallel runs never collide.
#
# Layout (10.A.B.x, one /24 per run):
#
#   identity ns   .33/32 on lo: identity's service address (listen here)
#                 .1/30  link to region-one      .5/30 link to region-two
#   region-one ns .2/30  link to identity        .9/30  link to region-two (tbf, egress)
#   region-two ns .6/30  link to identity        .10/30 link to region-one (tbf, egress)
#   management    root .13 <-> identity .14, root .17 <-> region-one .18,
#                 root .21 <-> region-two .22 (unshaped /30 links; the test and the
#                 operator reach the services over them)
#
# Each region serves on its address on the region-to-region link (.9 for region-one, .10 for
# region-two) and those are the URLs in the catalog: seen from the other region they are
# directly connected, so every replication byte crosses the shaped link. Identity's .33 is
# routed from region-one via .1 and from region-two via .5. The root namespace routes .33, .9
# and .10 over the management links, so one URL per service works from the host too. No
# namespace forwards packets: each address a packet is sent to is local to the namespace it
# arrives in (Linux accepts a local address on any interface), and each reply goes back over
# the link it came in on.
set -Eeuo pipefail

usage() {
  echo "usage: $0 up DIR | down DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

down() {
  local env=$1/netns.env
  [ -f "$env" ] || return 0
  # shellcheck disable=SC1090
  . "$env"
  for ns in "$NS_ID" "$NS_R1" "$NS_R2"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  # Deleting a namespace deletes its veth ends and so their peers; this is belt and braces.
  for dev in $ROOT_DEVS; do
    ip link del "$dev" 2>/dev/null || true
  done
  rm -f "$env"
}

# A /24 of 10.0.0.0/8 that no route or address of the root namespace overlaps: "A B".
free_net() {
  local a b net
  for _ in $(seq 1 64); do
    a=$((100 + RANDOM % 150))
    b=$((RANDOM % 256))
    net=10.$a.$b.0/24
    if [ -z "$(ip -4 route show table all root "$net")" ] &&
      [ -z "$(ip -4 route show table all match "$net" | grep -v '^default')" ]; then
      echo "$a $b"
      return 0
    fi
  done
  echo "no free /24 in 10.100.0.0-10.249.255.0" >&2
  return 1
}

up() {
  mkdir -p "$dir"
  [ ! -f "$dir/netns.env" ] || {
    echo "$dir/netns.env exists: run down first" >&2
    exit 1
  }
  local rate=${RATE:-200mbit} burst=${BURST:-256kb} latency=${LATENCY:-50ms}
  local hex
  hex=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  local p=gl-$hex
  local id=$p-id r1=$p-r1 r2=$p-r2
  # Root-side ends of the management links (interface names: at most 15 characters).
  local mi=gl${hex}i m1=gl${hex}1 m2=gl${hex}2

  # The address choice and the links that take it happen under one lock.
  exec 9>/run/glimpse-netns-regions.lock
  flock 9
  local a b ab
  ab=$(free_net)
  read -r a b <<<"$ab"
  local n=10.$a.$b

  cat >"$dir/netns.env" <<EOF
# Made by scripts/netns-regions.sh up; scripts/netns-regions.sh down $dir removes it.
NS_ID=$id
NS_R1=$r1
NS_R2=$r2
ROOT_DEVS="$mi $m1 $m2"
NET=$n.0/24
ID_ADDR=$n.33
R1_ADDR=$n.9
R2_ADDR=$n.10
R1_LINK_DEV=to-r2
R2_LINK_DEV=to-r1
RATE=$rate
BURST=$burst
LATENCY=$latency
EOF
  trap 'down "$dir"' ERR

  for ns in "$id" "$r1" "$r2"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # pair NS1 DEV1 ADDR1 NS2 DEV2 ADDR2 (NS "" = the root namespace)
  pair() {
    local ns1=$1 d1=$2 a1=$3 ns2=$4 d2=$5 a2=$6
    local at1=() at2=() n1=() n2=()
    [ -z "$ns1" ] || { at1=(netns "$ns1"); n1=(-n "$ns1"); }
    [ -z "$ns2" ] || { at2=(netns "$ns2"); n2=(-n "$ns2"); }
    ip link add "$d1" "${at1[@]}" type veth peer name "$d2" "${at2[@]}"
    ip "${n1[@]}" addr add "$a1/30" dev "$d1"
    ip "${n2[@]}" addr add "$a2/30" dev "$d2"
    ip "${n1[@]}" link set "$d1" up
    ip "${n2[@]}" link set "$d2" up
  }
  pair "$id" to-r1 "$n.1" "$r1" to-id "$n.2"
  pair "$id" to-r2 "$n.5" "$r2" to-id "$n.6"
  pair "$r1" to-r2 "$n.9" "$r2" to-r1 "$n.10"
  pair "" "$mi" "$n.13" "$id" mgmt "$n.14"
  pair "" "$m1" "$n.17" "$r1" mgmt "$n.18"
  pair "" "$m2" "$n.21" "$r2" mgmt "$n.22"
  flock -u 9

  # Identity's service address, routed from both regions over their links to identity.
  ip -n "$id" addr add "$n.33/32" dev lo
  ip -n "$r1" route add "$n.33/32" via "$n.1"
  ip -n "$r2" route add "$n.33/32" via "$n.5"
  # Identity reaches the regions' service addresses over its own links to them.
  ip -n "$id" route add "$n.9/32" via "$n.2"
  ip -n "$id" route add "$n.10/32" via "$n.6"
  # The host reaches the three service addresses over the management links.
  ip route add "$n.33/32" via "$n.14" dev "$mi"
  ip route add "$n.9/32" via "$n.18" dev "$m1"
  ip route add "$n.10/32" via "$n.22" dev "$m2"

  # The region-to-region link: egress shaping on both ends.
  for end in "$r1 to-r2" "$r2 to-r1"; do
    read -r ns dev <<<"$end"
    ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" \
      latency "$latency"
  done
  trap - ERR
  echo "namespaces $id $r1 $r2; identity $n.33, region-one $n.9, region-two $n.10;" \
    "region link $rate (tbf burst $burst latency $latency); see $dir/netns.env"
}

case $cmd in
up) up ;;
down) down "$dir" ;;
*) usage ;;
esac
