# Shared by the tools/install_*.sh scripts: install Debian packages with apt-get, as root or
# through password-less sudo. Source it, then call
#
#   apt_install NAME PKG...
#
# NAME prefixes the messages. Packages already installed are skipped; the package index is
# refreshed only when a package is unknown to it. Without apt-get or root rights it says what
# to run and returns 1.

apt_missing() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

apt_install() {
  local name=$1; shift
  local missing
  mapfile -t missing < <(apt_missing "$@")
  [ ${#missing[@]} -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: apt-get not found; install ${missing[*]} with your package manager" >&2
    return 1
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "$name: installing Debian packages needs root; run 'sudo apt-get install -y ${missing[*]}' (or this script as root)" >&2
      return 1
    fi
  fi
  echo "$name: installing Debian packages: ${missing[*]}"
  local pkg
  for pkg in "${missing[@]}"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
      "${sudo[@]}" apt-get update -qq
      break
    fi
  done
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
