# Sourced by scripts/tempest and scripts/tempest-keystone: Tempest's pre-provisioned accounts
# and the environment ../shared/tools/run-tempest.sh reads, the same whichever identity serves.
#   tempest_accounts CLOUD          as the admin of clouds.yaml's CLOUD (OS_CLIENT_CONFIG_FILE),
#                                   with the real openstack CLI: tempest-project and
#                                   tempest-alt-project; tempest-member and tempest-alt-member
#                                   (member of each), tempest-reader (reader of the first)
#   tempest_env AUTH_URL ADMIN_PW   OS_AUTH_URL, TEMPEST_REGION (region-one), the admin and
#                                   the Tempest venv

tempest_accounts() {
  local cloud=$1
  _osc() { "$GLIMPSE_OPENSTACK_CLI" --os-cloud "$cloud" "$@" >/dev/null; }
  _osc project create tempest-project
  _osc project create tempest-alt-project
  for u in tempest-member tempest-alt-member tempest-reader; do
    _osc user create --password secret "$u"
  done
  _osc role add --user tempest-member --project tempest-project member
  _osc role add --user tempest-alt-member --project tempest-alt-project member
  _osc role add --user tempest-reader --project tempest-project reader
}

tempest_env() {
  export OS_AUTH_URL=$1
  export TEMPEST_REGION=region-one
  export TEMPEST_ADMIN_USER=admin TEMPEST_ADMIN_PASSWORD=$2 TEMPEST_ADMIN_PROJECT=admin
  export TEMPEST_FORMAT_ENFORCEMENT=${TEMPEST_FORMAT_ENFORCEMENT:-true}
  export TEMPEST_VENV=${TEMPEST_VENV:-$HOME/.cache/tempest-venv}
}
