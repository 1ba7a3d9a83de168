# Sourced by the scripts: puts the uv command in the array UV, installing uv with pip when it is missing.
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  echo "installing uv with pip ..." >&2
  python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv
  UV=(python3 -m uv)
fi
