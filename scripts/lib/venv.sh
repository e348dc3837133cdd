# Sets up .venv with the reference Python TensorFlow (python/requirements.txt, then
# python/requirements-no-deps.txt without its declared dependencies, so that one CPU TensorFlow
# is installed). Rebuilt whenever the requirement files change. Source it, then call
# ensure_venv from the repository root.
ensure_venv() {
  local stamp=.venv/requirements.installed
  if [ -x .venv/bin/python ] && cat python/requirements.txt python/requirements-no-deps.txt | cmp -s - "$stamp" \
      && .venv/bin/python -c 'import tensorflow_serving' 2>/dev/null; then
    return
  fi
  echo "==> setting up .venv with python/requirements*.txt (reference TensorFlow 2.21)" >&2
  # A fresh environment, so that no second TensorFlow from an older requirement set stays; a
  # .venv that is a symlink is another checkout's environment, and is only added to.
  if [ -L .venv ]; then python3 -m venv .venv; else python3 -m venv --clear .venv; fi
  .venv/bin/pip install --quiet -r python/requirements.txt
  .venv/bin/pip install --quiet --no-deps -r python/requirements-no-deps.txt
  cat python/requirements.txt python/requirements-no-deps.txt > "$stamp"
}
