#!/usr/bin/env bash
# Outside references that some tests compare rxspark against:
#   libgsl27                 GSL's gsl_qrng_niederreiter_2, checked against rxspark's NIEDERR
#   libpython3.X-testsuite   CPython's own concurrent.futures tests, run against RxExecutor
# Installed with apt-get when run as root; otherwise the tests that need them
# skip and say why. Never fails the setup.
set -u
missing=()
ldconfig -p 2>/dev/null | grep -q 'libgsl\.so' || missing+=(libgsl27)
ver=$("${PYTHON:-python3}" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
if [ -n "$ver" ] && ! ls "/usr/lib/python$ver/test/test_concurrent_futures"* >/dev/null 2>&1 \
    && ! "${PYTHON:-python3}" -c 'import test.test_concurrent_futures' >/dev/null 2>&1; then
    missing+=("libpython$ver-testsuite")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    updated=
    for pkg in "${missing[@]}"; do
        echo "rxspark: installing the test reference $pkg with apt-get ..."
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >>/tmp/rxspark-test-libs.log 2>&1; then
            continue
        fi
        if [ -z "$updated" ]; then
            updated=1
            apt-get update -qq >>/tmp/rxspark-test-libs.log 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >>/tmp/rxspark-test-libs.log 2>&1 && continue
        fi
        echo "rxspark: could not install $pkg (see /tmp/rxspark-test-libs.log); the tests that compare against it will skip."
    done
    exit 0
fi
echo "rxspark: ${missing[*]} not installed (Debian: apt-get install ${missing[*]}); the tests that compare against them will skip."
exit 0
