#!/usr/bin/env bash
# Set up everything slimline needs on this machine: a virtualenv in .venv with slimline and its
# test tools, and (with --system) the Debian tools the tests drive: podman, runc, skopeo, umoci,
# the registry server, buildah, mmdebstrap, qemu for other architectures, chromium (the HTML report test).
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_system=0
extras=""
for arg in "$@"; do
  case "$arg" in
    --system) want_system=1 ;;
    --test) extras="[test]" ;;
    *) echo "usage: scripts/setup.sh [--system] [--test]" >&2; exit 2 ;;
  esac
done

if [ "$want_system" = 1 ]; then
  pkgs=(podman runc skopeo umoci docker-registry buildah mmdebstrap qemu-user-static binfmt-support bubblewrap
        apache2-utils busybox-static git openssl ca-certificates time chromium)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Other architectures (arm64 images) run under qemu through binfmt_misc.
  if [ -d /proc/sys/fs/binfmt_misc ] && [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && command -v update-binfmts >/dev/null; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
  fi
fi

# The interpreter of .venv: $PYTHON if set; else the system's python3 if it is 3.11 or newer (a
# distribution's optimised build starts and imports faster than a default source build such as
# pyenv's, and start-up is most of a rebuild served from the memo); else python3 from PATH.
# One that cannot make a venv yet (Debian ships venv/ensurepip apart) is passed over, unless
# none can: then python3-venv is installed.
candidates=(/usr/bin/python3 python3)
[ -z "${PYTHON:-}" ] || candidates=("$PYTHON")
usable() { command -v "$1" >/dev/null && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
can_venv() { "$1" -c "import ensurepip, venv" 2>/dev/null; }

if [ ! -x .venv/bin/python ]; then
  python=""
  for p in "${candidates[@]}"; do
    if usable "$p" && can_venv "$p"; then python=$p; break; fi
  done
  if [ -z "$python" ]; then
    for p in "${candidates[@]}"; do
      if usable "$p"; then python=$p; break; fi
    done
    if [ -z "$python" ]; then
      echo "setup: slimline needs Python 3.11 or newer (set PYTHON=/path/to/python3.11+)" >&2
      exit 1
    fi
    if command -v apt-get >/dev/null; then
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    fi
  fi
  echo "setup: creating .venv with $python ($("$python" -c 'import sys; print(sys.version.split()[0])'))" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.slimline-setup${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".${extras}"
  touch "$stamp"
fi
# bytecode for slimline's own modules, as a wheel install would have (an editable install has
# none, and PYTHONDONTWRITEBYTECODE would keep every run compiling them): start-up time matters
.venv/bin/python -m compileall -q -j 0 src >/dev/null
