#!/bin/sh
# Installs the Debian 12 packages ssmlm needs to build and test (skips apt when all are present).
set -e
PKGS="build-essential clang libomp-dev libclang-rt-14-dev libopenblas-dev libopenblas-openmp-dev libcjson-dev openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
