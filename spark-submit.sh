#!/usr/bin/env bash
# Run a Python script that uses rxspark with spark-submit.
#
#   ./spark-submit.sh [--profile local|standalone|yarn] [--python PATH] [--python-env ARCHIVE]
#                     [spark-submit options] script.py [args...]
#
# - spark-submit comes from $SPARK_HOME, else from the pip-installed PySpark;
# - --profile picks conf/spark-defaults.<profile>.conf (default: local);
# - driver and executors run --python; default: $PYSPARK_PYTHON, else the active
#   virtualenv's python ($VIRTUAL_ENV), else this checkout's .venv, else python3;
# - the rxspark package is zipped and shipped with --py-files, so cluster nodes
#   need numpy, cloudpickle and pyarrow but not rxspark itself;
# - --python-env ARCHIVE (made by `rxspark pack`, venv-pack or conda-pack) ships
#   a whole environment instead: --archives ARCHIVE#environment, and the executors
#   (and, with --deploy-mode cluster, the driver) run ./environment/bin/python;
# - options before the script go to spark-submit, the script and everything after it
#   to the script, unchanged (rxspark's own --profile/--python/--help only before the script).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile="local"
python=""
python_env=""
deploy_mode=""
submit_args=()   # spark-submit's own options, before the script
script_args=()   # the script and everything after it, passed through untouched
# spark-submit options that take no value; every other option before the script takes one.
flags=" --verbose -v --supervise --version --usage-error "
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?--profile needs a name}"; shift 2; continue ;;
        --profile=*) profile="${1#--profile=}"; shift; continue ;;
        --python) python="${2:?--python needs a path}"; shift 2; continue ;;
        --python=*) python="${1#--python=}"; shift; continue ;;
        --python-env) python_env="${2:?--python-env needs an archive}"; shift 2; continue ;;
        --python-env=*) python_env="${1#--python-env=}"; shift; continue ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    esac
    if [[ "$1" == -* ]]; then
        case "$1" in
            --deploy-mode) deploy_mode="${2:-}" ;;
            --deploy-mode=*) deploy_mode="${1#--deploy-mode=}" ;;
        esac
        submit_args+=("$1")
        if [[ "$1" != *=* && "$flags" != *" $1 "* && $# -gt 1 ]]; then
            submit_args+=("$2")
            shift
        fi
        shift
    else
        script_args=("$@")   # the script: from here on every argument is the script's
        break
    fi
done
if [ ${#script_args[@]} -eq 0 ]; then
    echo "spark-submit.sh: give the script to run (see --help)" >&2
    exit 2
fi

if [ -z "$python" ]; then
    if [ -n "${PYSPARK_PYTHON:-}" ]; then python="$PYSPARK_PYTHON"
    elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then python="$VIRTUAL_ENV/bin/python"
    elif [ -x "$here/.venv/bin/python" ]; then python="$here/.venv/bin/python"
    else python="$(command -v python3)"; fi
fi

properties="$here/conf/spark-defaults.$profile.conf"
if [ ! -f "$properties" ]; then
    echo "spark-submit.sh: no profile '$profile' (looked for $properties)" >&2
    exit 2
fi

if [ -n "${SPARK_HOME:-}" ]; then
    submit="$SPARK_HOME/bin/spark-submit"
else
    if ! submit="$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit"))' 2>/dev/null)"; then
        echo "spark-submit.sh: $python cannot import pyspark; run 'make venv' (this checkout's .venv), activate" \
             "the environment that has it, name its python with --python or PYSPARK_PYTHON, or set SPARK_HOME" >&2
        exit 2
    fi
fi
if [ ! -x "$submit" ]; then
    echo "spark-submit.sh: spark-submit not found at $submit (install pyspark or set SPARK_HOME)" >&2
    exit 2
fi

"$here/scripts/ensure-java.sh"

umask 077
work="$(mktemp -d "${TMPDIR:-/tmp}/rxspark-submit.XXXXXX")"  # private (0700)
trap 'rm -rf "$work"' EXIT

# The profile, plus the authentication secret from the environment when there is
# one: written to a private file, never put on a command line (visible in ps).
submit_properties="$work/spark-defaults.conf"
cp "$properties" "$submit_properties"
if [ -n "${_SPARK_AUTH_SECRET:-}" ]; then
    printf '\nspark.authenticate.secret %s\n' "$_SPARK_AUTH_SECRET" >> "$submit_properties"
fi
env_python="./environment/bin/python"
executor_python="$python"
driver_python="$python"
ship_args=()
if [ -n "$python_env" ]; then
    case "$python_env" in
        *://*) ;;
        *) if [ ! -f "$python_env" ]; then
               echo "spark-submit.sh: --python-env: no archive at $python_env (make one with: rxspark pack --output PATH)" >&2
               exit 2
           fi
           python_env="$(cd "$(dirname "$python_env")" && pwd)/$(basename "$python_env")" ;;
    esac
    case "$python_env" in
        *.tar.gz|*.tgz|*.tar|*.zip) ;;
        *) echo "spark-submit.sh: --python-env must be a .tar.gz, .tgz, .tar or .zip archive, got $python_env" >&2; exit 2 ;;
    esac
    executor_python="$env_python"
    # In cluster deploy mode the driver runs on a node too, from the same archive.
    if [ "$deploy_mode" = "cluster" ]; then driver_python="$env_python"; fi
    ship_args=(--archives "${python_env%%#*}#environment")
else
    (cd "$here" && "$python" - "$work/rxspark.zip" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("rxspark"):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                z.write(os.path.join(root, name))
PY
    )
    ship_args=(--py-files "$work/rxspark.zip")
fi

export PYSPARK_PYTHON="$executor_python"
if [ "$deploy_mode" = "cluster" ]; then
    unset PYSPARK_DRIVER_PYTHON   # the driver runs on a node: spark.pyspark.driver.python names its Python
else
    export PYSPARK_DRIVER_PYTHON="$driver_python"
fi
if [ "$profile" = "local" ]; then
    export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
fi

# Not exec: the EXIT trap must remove the work directory (it holds the secret).
status=0
"$submit" \
    --properties-file "$submit_properties" \
    --driver-java-options "-Dlog4j2.configurationFile=\"$here/rxspark/conf/log4j2.properties\"" \
    --conf "spark.pyspark.python=$executor_python" \
    --conf "spark.pyspark.driver.python=$driver_python" \
    "${ship_args[@]}" \
    ${submit_args[@]+"${submit_args[@]}"} \
    "${script_args[@]}" || status=$?
exit "$status"
