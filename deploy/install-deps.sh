#!/usr/bin/env bash
# Installs the native libraries ghostnet-d links against (OpenBLAS, libjpeg-turbo, OpenMPI) and the
# tools its tests use, with apt-get, when any is missing. Safe to run again: it does nothing when
# everything is present. Needs root (or sudo) only when something must be installed.
set -euo pipefail

# libjpeg-turbo's development package is libjpeg62-turbo-dev on Debian, libjpeg-turbo8-dev on Ubuntu.
jpeg_package=libjpeg62-turbo-dev
if ! apt-cache show "$jpeg_package" >/dev/null 2>&1 && apt-cache show libjpeg-turbo8-dev >/dev/null 2>&1; then
    jpeg_package=libjpeg-turbo8-dev
fi
packages=(pkg-config libopenblas-dev "$jpeg_package" libopenmpi-dev openmpi-bin libsqlite3-dev iproute2 procps curl openssl python3)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
    sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
