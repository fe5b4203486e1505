#!/usr/bin/env bash
# Compiles the MQL5 sources as C++ against the shim: rewrites them with
# mql5pp.py (mechanical, tested), then builds one native program per MQL5
# program with AddressSanitizer and UBSan. Prints nothing but errors on
# success except a summary line.
#
# Usage: build.sh [OUT_DIR]   (default: <repo>/target/sdk-mql5)
# Needs g++, libcurl (libcurl4-openssl-dev) and OpenSSL (libssl-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sdk=$(cd "$here/.." && pwd)
repo=$(cd "$sdk/../.." && pwd)
out=${1:-$repo/target/sdk-mql5}
mkdir -p "$out"
out=$(cd "$out" && pwd)

CXX=${CXX:-g++}
flags=(-std=c++17 -O0 -g -fwrapv -Wall -Wextra -Wno-unused-parameter -Werror
       -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
programs=(EagateSelfTest EagateCheckConnection EagateProbe EagateReferenceEA)

# Nothing to do when no input changed since the last build (a warm target/).
stamp=$( (cd "$sdk" && find . -path ./verify/__pycache__ -prune -o -type f \( -name '*.mq?' -o -name '*.h' \
          -o -name '*.cpp' -o -name '*.py' -o -name '*.sh' \) -print | LC_ALL=C sort | xargs sha256sum;
          echo "${flags[*]}"; "$CXX" --version | head -n1) | sha256sum | cut -c1-64)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
    fresh=1
    for p in "${programs[@]}"; do [ -x "$out/$p" ] || fresh=0; done
    if [ "$fresh" = 1 ]; then
        echo "build: MQL5 programs in $out are up to date"
        exit 0
    fi
fi
rm -f "$out/stamp"

rm -rf "$out/src" "$out/programs"
python3 "$here/mql5pp.py" "$sdk" "$out/src" >/dev/null
includes=(-I"$out/src/Include" -I"$here/shim/include" -include "$here/shim/mql5.h")

"$CXX" "${flags[@]}" -c "$here/shim/shim.cpp" -o "$out/shim.o"

build() { # name source [extra flags]
    local name=$1 src=$2
    shift 2
    "$CXX" "${flags[@]}" "${includes[@]}" "$@" -DMQL5_PROGRAM="\"$src\"" \
        "$here/shim/driver.cpp" "$out/shim.o" -lcurl -lcrypto -o "$out/$name"
}

python3 "$here/mql5pp.py" "$here/programs" "$out/programs" >/dev/null
# Two at a time (the machines have two cores); any failure fails the build.
pids=()
build EagateSelfTest "$out/src/Scripts/EagateSelfTest.mq5" -DSHIM_SCRIPT & pids+=($!)
build EagateCheckConnection "$out/src/Scripts/EagateCheckConnection.mq5" -DSHIM_SCRIPT & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
pids=()
build EagateProbe "$out/programs/EagateProbe.mq5" -DSHIM_SCRIPT & pids+=($!)
build EagateReferenceEA "$out/src/Experts/EagateReferenceEA.mq5" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
echo "$stamp" > "$out/stamp"
echo "build: MQL5 programs compiled as C++ into $out"
