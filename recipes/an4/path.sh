# Environment for this recipe: the project's virtual environment and its tools on PATH. Add
# corpus- or site-specific settings below.
. "$(dirname "${BASH_SOURCE[0]}")/../../tools/recipe_env.sh" || return 1 2>/dev/null || exit 1
