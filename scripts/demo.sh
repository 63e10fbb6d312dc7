#!/usr/bin/env bash
# demo.sh: the main job on the embedded example, from a fresh machine.
# Installs the packages into .venv, makes a Docker engine available, builds a local base image
# (no registry is needed), trains the iris model, builds a SageMaker image with the model baked in
# (turing-image-build --model-uri: nothing is installed when it starts), runs it as SageMaker does
# (`docker run IMAGE serve`), prints the answers of /ping, /invocations and /turing, and stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TAG=${TAG:-c7-mlflow-pyfunc-sagemaker}
BASE=${BASE_IMAGE:-turing-base:bookworm}
work=.turing-demo
log() { echo "==> $*"; }

bash scripts/setup-env.sh
bash scripts/docker-up.sh
bash scripts/base-image.sh "$BASE"
mkdir -p "$work"

log "training the example model (sklearn logistic regression on iris)"
.venv/bin/python examples/train_iris.py "$work/model" >/dev/null 2>&1

log "building the wheels of the scoring server and the example plugin"
rm -rf "$work/wheels"
(cd packages/scoring-server && ../../.venv/bin/hatch build -t wheel "../../$work/wheels" >/dev/null)
(cd examples/turing-example-endpoints && ../../.venv/bin/hatch build -t wheel "../../$work/wheels" >/dev/null)
server_wheel=$(ls "$work"/wheels/turing_scoring_server-*.whl)
plugin_wheel=$(ls "$work"/wheels/turing_example_endpoints-*.whl)

ca_args=()
# Behind a TLS-intercepting proxy pip needs the machine's CA bundle during the build;
# it is used at build time only and lands in no layer of the image.
[ -f /etc/ssl/certs/ca-certificates.crt ] && ca_args=(--build-ca-bundle /etc/ssl/certs/ca-certificates.crt)

log "building the image $TAG with the model baked in (first build: a few minutes)"
.venv/bin/turing-image-build --tag "$TAG" --base-image "$BASE" --model-uri "$work/model" \
    --server-wheel "$server_wheel" --extra-pip "$plugin_wheel" "${ca_args[@]}"

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "running $TAG as SageMaker does: docker run -p 127.0.0.1:$port:8080 $TAG serve"
cid=$(docker run -d -p "127.0.0.1:$port:8080" "$TAG" serve)
trap 'docker stop -t 30 "$cid" >/dev/null 2>&1; docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT

url=http://127.0.0.1:$port
for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$url/ping" 2>/dev/null && break
    if [ "$(docker inspect -f '{{.State.Running}}' "$cid")" != true ]; then
        echo "demo.sh: error: the container stopped; its log:" >&2
        docker logs "$cid" 2>&1 | tail -n 30 >&2
        exit 1
    fi
    sleep 0.25
done

show() { printf '\n$ %s\n' "$*"; "$@"; echo; }
show curl -sS -i "$url/ping"
show curl -sS -X POST "$url/invocations" -H 'Content-Type: application/json' \
    --data @"$work/model/serving_input_example.json"
show curl -sS "$url/turing"
show curl -sS -X POST "$url/invocations" -H 'X-Amzn-SageMaker-Custom-Attributes: route=/turing,method=GET'
log "stopping the container"
