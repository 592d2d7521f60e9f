#!/usr/bin/env bash
# Install Debian's prometheus and prometheus-alertmanager when missing (the integration
# tests run the real binaries), Java for the Spark reference builder's test (pyspark
# needs Java 17+), and a C compiler with Python's headers for the two compiled modules
# (setup.py; the tests check they are built). Needs root, as in CI.
set -euo pipefail
missing=()
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || missing+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] && [ -x /usr/bin/amtool ] || missing+=(prometheus-alertmanager)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
# Debian's own python3 keeps its headers apart (pyenv's and the images' carry them).
"${PYTHON:-python3}" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the services where systemd runs; the tests start their own instances.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || true
done
