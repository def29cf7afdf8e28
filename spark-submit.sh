#!/usr/bin/env bash
# Run a Python script that uses rxspark with spark-submit.
#
#   ./spark-submit.sh [--profile local|standalone|yarn] [--python PATH] [spark-submit options] script.py [args...]
#
# - spark-submit comes from $SPARK_HOME, else from the pip-installed PySpark;
# - --profile picks conf/spark-defaults.<profile>.conf (default: local);
# - driver and executors run --python (default: this checkout's .venv, else python3)
#   unless PYSPARK_PYTHON is set;
# - the rxspark package is zipped and shipped with --py-files, so cluster nodes
#   need numpy, cloudpickle and pyarrow but not rxspark itself;
# - every other argument goes to spark-submit and the script unchanged (quoted as given).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile="local"
python=""
passthrough=()
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?--profile needs a name}"; shift 2 ;;
        --profile=*) profile="${1#--profile=}"; shift ;;
        --python) python="${2:?--python needs a path}"; shift 2 ;;
        --python=*) python="${1#--python=}"; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) passthrough+=("$1"); shift ;;
    esac
done
if [ ${#passthrough[@]} -eq 0 ]; then
    echo "spark-submit.sh: give the script to run (see --help)" >&2
    exit 2
fi

if [ -z "$python" ]; then
    if [ -n "${PYSPARK_PYTHON:-}" ]; then python="$PYSPARK_PYTHON"
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
    submit="$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit"))')"
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

export PYSPARK_PYTHON="$python"
export PYSPARK_DRIVER_PYTHON="$python"
if [ "$profile" = "local" ]; then
    export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
fi

exec "$submit" \
    --properties-file "$submit_properties" \
    --driver-java-options "-Dlog4j2.configurationFile=file:$here/rxspark/conf/log4j2.properties" \
    --conf "spark.pyspark.python=$python" \
    --conf "spark.pyspark.driver.python=$python" \
    --py-files "$work/rxspark.zip" \
    "${passthrough[@]}"
