# Shared by bin/test and bin/meterworker: a Python >= 3.11 virtual environment with meterworker installed.
# Source it with $repo set and `extras` naming the pip extras ("" or "[test]"); it sets $python and $venv.
# shellcheck shell=bash

say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Run a command as root: directly, or through passwordless sudo. Fails otherwise.
as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

can_be_root() {
  [[ "$(id -u)" == 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

apt_install() {
  say "apt-get install $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------- Python ------

python_ok() {  # python_ok CMD: CMD is Python >= 3.11
  command -v "$1" >/dev/null 2>&1 &&
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

find_base_python() {
  local cand
  for cand in python3.11 python3 python3.13 python3.12; do
    if python_ok "$cand"; then
      command -v "$cand"
      return 0
    fi
  done
  return 1
}

if [[ -n "${VIRTUAL_ENV:-}" ]]; then
  venv="$VIRTUAL_ENV"
  [[ -x "$venv/bin/python" ]] || die "VIRTUAL_ENV=$venv has no bin/python"
  python_ok "$venv/bin/python" || die "VIRTUAL_ENV=$venv is not Python >= 3.11"
else
  venv="$repo/.venv"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    if ! base="$(find_base_python)"; then
      can_be_root || die "needs Python >= 3.11 with venv (Debian: apt-get install python3 python3-venv)"
      apt_install python3 python3-venv
      base="$(find_base_python)" || die "no Python >= 3.11 after installing python3 (Debian 12 or newer needed)"
    fi
    say "creating $venv with $base"
    if ! "$base" -m venv --clear "$venv"; then
      # Debian ships venv's pip bootstrap separately (python3.X-venv).
      can_be_root || die "'$base -m venv' failed; install python3-venv (apt-get install python3-venv)"
      ver="$("$base" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install python3-venv "python$ver-venv"
      "$base" -m venv --clear "$venv" || die "'$base -m venv' failed"
    fi
  fi
fi
python="$venv/bin/python"
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"  # so tests find the venv's console scripts (meterworker, celery)

# Reinstall only when pyproject.toml (or the checkout's location) changed.
stamp="$venv/.meterworker-install$extras"
want="$(cat "$repo/pyproject.toml"; echo "$repo")"
want="$(printf '%s' "$want" | cksum)"
if [[ "${METERWORKER_NO_INSTALL:-}" == 1 ]]; then
  say "skipping pip install (METERWORKER_NO_INSTALL=1)"
elif [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$python" -c 'import meterworker' 2>/dev/null; then
  :
else
  say "pip install -e '.$extras' into $venv"
  rm -f "$stamp"
  "$python" -m pip install -q -e "$repo$extras" || die "pip install -e '.$extras' failed"
  printf '%s' "$want" >"$stamp"
fi

