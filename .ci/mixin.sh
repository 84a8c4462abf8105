#!/usr/bin/env bash
# Renders the mixin (examples/mixin/*.libsonnet) to the files users load: the alerts, the
# recording rules, the promtool unit tests (examples/mixin/) and the dashboard
# (examples/grafana-dashboard.json). Needs jsonnet (Debian's package, installed by .ci/run).
#   bash .ci/mixin.sh           render in place
#   bash .ci/mixin.sh --check   render to a temporary directory and fail if a committed file differs
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jsonnet >/dev/null || { echo "jsonnet is not installed (Debian package jsonnet; .ci/run installs it)" >&2; exit 1; }
mixin=examples/mixin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
header="# Rendered from examples/mixin/*.libsonnet by .ci/mixin.sh; edit those, not this file."
yaml() { # FIELD FILE: a field of the mixin as YAML
  { echo "$header"; jsonnet -J "$mixin" -S -e "std.manifestYamlDoc((import 'mixin.libsonnet').$1, quote_keys=false)"; } >"$out/$2"
}
yaml prometheusAlerts prometheus_alerts.yaml
yaml prometheusRules prometheus_rules.yaml
{ echo "$header"; jsonnet -J "$mixin" -S -e "std.manifestYamlDoc(import 'tests.jsonnet', quote_keys=false)"; } >"$out/tests.yaml"
jsonnet -J "$mixin" -e "(import 'mixin.libsonnet').grafanaDashboards['ecs-exporter-tasks.json']" >"$out/grafana-dashboard.json"
status=0
for file in prometheus_alerts.yaml prometheus_rules.yaml tests.yaml grafana-dashboard.json; do
  case "$file" in
    grafana-dashboard.json) target=examples/$file ;;
    *) target=$mixin/$file ;;
  esac
  if [ "${1:-}" = "--check" ]; then
    diff -u "$target" "$out/$file" || { echo "$target is not what .ci/mixin.sh renders: run it and commit" >&2; status=1; }
  else
    cp "$out/$file" "$target"
  fi
done
exit $status
