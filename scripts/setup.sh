#!/usr/bin/env bash
# Installs every Debian (bookworm) package Caustic needs to build, test and plot.
# Idempotent: when everything is present it only checks and returns in a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git clang-format
  openmpi-bin libopenmpi-dev
  libfftw3-dev libfftw3-mpi-dev
  libhdf5-openmpi-dev hdf5-tools
  libtrilinos-kokkos-dev
  libtrilinos-rol-dev libtrilinos-teuchos-dev   # the optimiser of `caustic infer` (ROL) and its Teuchos
  libboost-dev    # Boost.Math (header-only): the t and F quantiles of MUSE's intervals
  libtorch-dev
  librandom123-dev
  libtomlplusplus-dev
  nlohmann-json3-dev
  libcli11-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  python3 python3-numpy python3-h5py python3-matplotlib
  python3-yt      # the snapshot and halo-catalogue reader test (tests/check_yt.py)
  python3-torch   # models built and scripted in PyTorch run in Caustic (tests/check_pytorch_model.py)
  slurm-wlm munge   # the campaign test runs a single-node SLURM cluster (jobs/slurm/local-cluster.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
