#!/bin/sh
# SPDX-License-Identifier: MIT
#
# header_test: the public headers compile alone, as users compile them:
# C99 (strict, no feature macros) and C++11/C++20, -Wall -Wextra -Werror,
# the option initializers included (C++ warned about missing fields).
# usage: header_test.sh ROOT    (TAP output, non-zero exit on failure)
set -u
ROOT=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
INC="-I$ROOT/userlib -I$ROOT/uapi"
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); sed 's/^/# /' "$TMP/err"; fi; }

echo "1..5"
for h in uhp.h uhp_runtime.h uhp_uring.h; do
	printf '#include "%s"\nint main(void) { return 0; }\n' "$h" >"$TMP/t.c"
	${CC:-cc} -std=c99 -Wall -Wextra -Werror $INC -c "$TMP/t.c" -o "$TMP/t.o" 2>"$TMP/err"
	ok $? "$h alone under -std=c99 -Wall -Wextra -Werror"
done
cat >"$TMP/t.cc" <<'C'
#include "uhp.h"
#include "uhp_runtime.h"
int main()
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_runtime_opts r = UHP_RUNTIME_OPTS_INIT;
	struct uhp_agent_opts a = UHP_AGENT_OPTS_INIT;

	(void)o; (void)r; (void)a;
	return 0;
}
C
for std in c++11 c++20; do
	${CXX:-c++} -std=$std -Wall -Wextra -Werror $INC -c "$TMP/t.cc" -o "$TMP/t.o" 2>"$TMP/err"
	ok $? "uhp.h, uhp_runtime.h and their *_OPTS_INIT under -std=$std -Wall -Wextra -Werror"
done
echo "$((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
