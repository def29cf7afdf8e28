#!/usr/bin/env bash
# Native libraries that some tests use as independent references:
#   libgsl27  GSL's gsl_qrng_niederreiter_2, checked against rxspark's NIEDERR
# Installed with apt-get when run as root; otherwise the tests that need them
# skip and say why. Never fails the setup.
set -u
missing=()
ldconfig -p 2>/dev/null | grep -q 'libgsl\.so' || missing+=(libgsl27)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "rxspark: installing test reference libraries with apt-get: ${missing[*]} ..."
    if (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
        || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}")) \
        >/tmp/rxspark-test-libs.log 2>&1; then
        exit 0
    fi
    echo "rxspark: could not install ${missing[*]} (see /tmp/rxspark-test-libs.log); the tests that compare against them will skip."
    exit 0
fi
echo "rxspark: ${missing[*]} not installed (Debian: apt-get install ${missing[*]}); the tests that compare against them will skip."
exit 0
