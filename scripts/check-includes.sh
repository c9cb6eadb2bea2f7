#!/bin/bash
# The module layering of docs/design.md ("Modules"): src/http includes nothing of src/fastcgi or
# src/server*, src/fastcgi nothing of src/server*, and no module of src/{http,fastcgi,pool,config,
# util,ctl} includes a server*.h. Prints each violation; exits 1 when there is one.
cd "$(dirname "$0")/.."
bad=0
check() { # dir pattern
    local hits
    hits=$(grep -HnE "#include \"($2)" src/$1/*.[ch] 2>/dev/null)
    if [ -n "$hits" ]; then echo "$hits"; bad=1; fi
}
check http 'fastcgi/|server'
check fastcgi 'server'
check pool 'http/|fastcgi/|server'
check config 'http/|fastcgi/|pool/|server'
check util 'http/|fastcgi/|pool/|config/|server'
check ctl 'http/|fastcgi/|server'
[ $bad = 0 ] && echo "include layering: ok"
exit $bad
