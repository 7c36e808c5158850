# Sourced by every example: a scratch directory, jvs from PATH, and a trace of each step.
# JVS_EXAMPLES_DIR picks where the scratch directory goes (e.g. a JuiceFS mount, to see
# the juicefs-clone engine at work); KEEP=1 keeps it afterwards for a look around.
command -v jvs >/dev/null || { echo "jvs is not on PATH" >&2; exit 1; }
WORK=$(mktemp -d "${JVS_EXAMPLES_DIR:-${TMPDIR:-/tmp}}/jvs-example.XXXXXX")
if [[ "${KEEP:-0}" == 1 ]]; then
    trap 'echo "kept: $WORK" >&2' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi
cd "$WORK"
step() { printf '\n### %s\n' "$*"; }
# check CONDITION-COMMAND... : fail the example loudly if the outcome is not what the
# workflow promises.
check() { "$@" || { echo "CHECK FAILED: $*" >&2; exit 1; }; }
