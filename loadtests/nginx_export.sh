#!/usr/bin/env bash
# The route table compiled to nginx (strangler routes export) and served by one nginx
# worker: a proxy command for ../shared/bench/peers.sh, so the export is measured beside
# strangler's own proxy and plain nginx in the same kind of run:
#   peers.sh -p 'bash loadtests/nginx_export.sh {routes} {port}'
set -euo pipefail
routes=$1 port=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
strangler routes export "$routes" --to nginx --listen "127.0.0.1:$port" --state none -o "$dir/strangler.conf" >/dev/null
cat > "$dir/nginx.conf" <<NG
worker_processes 1; daemon off; pid $dir/nginx.pid; error_log $dir/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; include $dir/strangler.conf; }
NG
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -p "$dir" -c "$dir/nginx.conf" &
child=$!
trap 'kill $child 2>/dev/null; wait $child 2>/dev/null; rm -rf "$dir"' EXIT TERM INT
wait $child
