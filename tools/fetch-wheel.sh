# Sourced by the tools/fetch-*.sh scripts: one pinned wheel from PyPI, checked against its sha256.
#   wheel=$(fetch_wheel NAME SHA256 DIR REQUIREMENT [pip download options...])
# NAME prefixes the messages; the wheel's path is printed on stdout; non-zero status on any failure.
fetch_wheel() {
  local name=$1 sha=$2 dir=$3
  shift 3
  local pip
  pip=$(command -v pip || command -v pip3) || { echo "$name: pip is needed (apt-get install python3-pip)" >&2; return 1; }
  "$pip" download --quiet --no-deps --disable-pip-version-check "$@" -d "$dir" >&2 || return 1
  local wheel
  wheel=$(ls "$dir"/*.whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || { echo "$name: pip fetched no wheel for $1" >&2; return 1; }
  echo "$sha  $wheel" | sha256sum -c --status || { echo "$name: checksum mismatch for $wheel" >&2; return 1; }
  echo "$wheel"
}
