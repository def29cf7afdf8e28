#!/usr/bin/env bash
# Spark needs Java 17+. Say so in one line when it is missing, and install
# Debian's openjdk-17-jre-headless when we can (root with apt-get).
set -u
java_major() {
    command -v java >/dev/null 2>&1 || return 1
    java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}
major=$(java_major || true)
if [ -n "${major:-}" ] && [ "$major" -ge 17 ] 2>/dev/null; then
    exit 0
fi
if [ -n "${major:-}" ]; then
    echo "rxspark: Spark needs Java 17 or newer; found Java $major."
else
    echo "rxspark: Spark needs Java 17 or newer; no 'java' found on PATH."
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "rxspark: installing openjdk-17-jre-headless with apt-get ..."
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless) >/tmp/rxspark-java-install.log 2>&1; then
        hash -r
        major=$(java_major || true)
        if [ -n "${major:-}" ] && [ "$major" -ge 17 ] 2>/dev/null; then
            echo "rxspark: Java $major installed."
            exit 0
        fi
    fi
    echo "rxspark: could not install Java 17 (see /tmp/rxspark-java-install.log); install a JDK/JRE 17+ and set JAVA_HOME."
    exit 1
fi
echo "rxspark: install a Java 17+ runtime (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17) and set JAVA_HOME."
exit 1
